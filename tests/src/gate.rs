//! A TCP forwarder that a test closes and opens again: its way to take a server (the S3 test
//! server, say) away from the platform and give it back, without stopping the server, which
//! other tests share; and the platform with its cold tier on the S3 test server behind one.

use std::net::SocketAddr;

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// Forwards connections to a target while open. Closed, it cuts the connections it carries
/// and closes each new one at once, as a server that went away would.
#[derive(Debug)]
pub struct Gate {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Gate {
    /// An open gate to `target`, listening on a free port of 127.0.0.1.
    pub async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let (open, watched) = watch::channel(true);
        let accepting = tokio::spawn(accept(listener, target, watched));
        Self {
            addr,
            open,
            accepting,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection and refuses new ones.
    pub fn close(&self) {
        self.open.send_replace(false);
    }

    /// Forwards new connections again.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, open: watch::Receiver<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        if *open.borrow() {
            tokio::spawn(forward(client, target, open.clone()));
        }
    }
}

/// Carries one connection until either side ends it or the gate closes.
async fn forward(mut client: TcpStream, target: SocketAddr, mut open: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = open.wait_for(|open| !open) => {}
    }
}

/// The S3 test server's address, from `MFG_TEST_S3_ENDPOINT` (`http://host:port`).
pub fn s3_server() -> SocketAddr {
    let endpoint = std::env::var("MFG_TEST_S3_ENDPOINT")
        .expect("an S3 test server: run `scripts/test.sh`, which starts one");
    endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("the S3 test server's host and port")
}

/// A new bucket on the S3 test server, reached directly.
pub async fn bucket(name: &str) -> mfg_storage::telemetry::object_store::S3Store {
    use mfg_storage::telemetry::object_store::{DEFAULT_ATTEMPT_TIMEOUT, S3Config, S3Store};
    let store = S3Store::connect(&S3Config {
        bucket: name.to_owned(),
        endpoint: Some(format!("http://{}", s3_server())),
        region: "us-east-1".to_owned(),
        path_style: true,
        credentials: Some(("test".to_owned(), "test".to_owned())),
        attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
    })
    .await;
    store.ensure_bucket().await.expect("the test bucket");
    store
}

/// The platform, its cold tier in `bucket` on the S3 test server through `gate`, giving each
/// provisioning step two attempts and each S3 request attempt five seconds.
pub async fn up_behind(
    dir: &std::path::Path,
    database_url: Option<&str>,
    bucket: &str,
    gate: &Gate,
) -> crate::Platform {
    let mut args = crate::up_args(dir, database_url, false);
    let s3 = &mut args.storage.s3;
    s3.bucket = Some(bucket.to_owned());
    s3.endpoint = Some(format!("http://{}", gate.addr()));
    s3.path_style = true;
    s3.access_key_id = Some("test".to_owned());
    s3.secret_access_key = Some(mfg_common::config::Secret::new("test"));
    // A request cut off behind the closed gate fails within seconds, not the default minute.
    s3.attempt_timeout = std::time::Duration::from_secs(5);
    args.runs.step_attempts = 2;
    crate::Platform::up_with(args).await
}
