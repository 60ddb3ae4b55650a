//! What one peer may hold open on a listener: every accepted connection must start speaking its
//! protocol within a deadline (the HTTP/2 preface, or HTTP/1 headers through hyper's own
//! timeout), and one address may hold only so many connections at once. Without these, a few
//! hundred sockets that connect and say nothing stay open until the process runs out of file
//! descriptors. After the handshake, HTTP/2 keepalive pings (set where the servers are built)
//! close connections whose peer stopped answering.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    time::Sleep,
};

/// How long a new connection may take to send the first bytes of its protocol: the 24-byte
/// HTTP/2 preface, or anything (HTTP/1 headers are bounded by hyper's header-read timeout).
const HTTP2_PREFACE_LEN: usize = 24;

/// The bounds on what one peer may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a connection may take to send the start of its protocol.
    pub handshake_timeout: Duration,
    /// How many connections one IP address may hold at once.
    pub max_per_peer: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_per_peer: 4_096,
        }
    }
}

/// How many connections each peer holds.
#[derive(Debug, Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

impl Peers {
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut peers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let held = peers.entry(ip).or_default();
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

/// One connection's place in its peer's count, given back when the connection is dropped.
#[derive(Debug)]
struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.peers.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = peers.get_mut(&self.ip) {
            *held -= 1;
            if *held == 0 {
                peers.remove(&self.ip);
            }
        }
    }
}

/// An accepted TCP connection, bounded by [`ConnectionLimits`].
#[derive(Debug)]
pub struct Admitted {
    stream: TcpStream,
    remote: SocketAddr,
    /// Until the first bytes have come: when they must have come by.
    handshake: Option<Pin<Box<Sleep>>>,
    /// How many bytes the handshake still waits for.
    handshake_bytes: usize,
    _slot: PeerSlot,
}

impl Admitted {
    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// The TCP stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let Some(deadline) = &mut this.handshake {
            if let Poll::Ready(Ok(())) = read {
                let got = buf.filled().len() - before;
                this.handshake_bytes = this.handshake_bytes.saturating_sub(got);
                if this.handshake_bytes == 0 || got == 0 {
                    this.handshake = None;
                }
            } else if read.is_pending() && deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer did not start its protocol in time",
                )));
            }
        }
        read
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Admitted {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// Accepts connections from `listener` within `limits`, with no Nagle delay (a response written
/// in pieces must not wait for a delayed ACK). A peer over its count is
/// closed at once. Accept errors (such as running out of file descriptors) are logged and
/// retried after a pause, never returned, so that the server keeps serving.
pub fn admit(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> impl Stream<Item = io::Result<Admitted>> + Send + 'static {
    let peers = Arc::new(Peers::default());
    futures::stream::unfold(listener, move |listener| {
        let peers = peers.clone();
        async move {
            loop {
                let (stream, remote) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = peers.admit(remote.ip(), limits.max_per_peer) else {
                    tracing::debug!(peer = %remote.ip(), "a peer over its connection limit was refused");
                    continue;
                };
                configure(&stream);
                let admitted = Admitted {
                    stream,
                    remote,
                    handshake: Some(Box::pin(tokio::time::sleep(limits.handshake_timeout))),
                    handshake_bytes: HTTP2_PREFACE_LEN,
                    _slot: slot,
                };
                return Some((Ok(admitted), listener));
            }
        }
    })
}

fn configure(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn listen(
        limits: ConnectionLimits,
    ) -> (SocketAddr, tokio::sync::mpsc::Receiver<Admitted>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (admitted, receiver) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let incoming = admit(listener, limits);
            tokio::pin!(incoming);
            while let Some(Ok(connection)) = incoming.next().await {
                if admitted.send(connection).await.is_err() {
                    return;
                }
            }
        });
        (addr, receiver)
    }

    const LIMITS: ConnectionLimits = ConnectionLimits {
        handshake_timeout: Duration::from_millis(200),
        max_per_peer: 2,
    };

    #[tokio::test]
    async fn a_peer_that_says_too_little_is_timed_out() {
        let (addr, mut admitted) = listen(LIMITS).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"PRI * HTTP/2.0").await.unwrap();
        let mut server = admitted.recv().await.unwrap();
        let mut buf = [0u8; 64];
        let got = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..got], b"PRI * HTTP/2.0");
        let error = server.read(&mut buf).await.expect_err("timed out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_peer_that_started_its_protocol_may_then_be_quiet() {
        let (addr, mut admitted) = listen(LIMITS).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&[b'x'; HTTP2_PREFACE_LEN]).await.unwrap();
        let mut server = admitted.recv().await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).await.unwrap(), HTTP2_PREFACE_LEN);
        let quiet = tokio::time::timeout(LIMITS.handshake_timeout * 3, server.read(&mut buf)).await;
        assert!(
            quiet.is_err(),
            "a quiet peer past its handshake keeps its connection"
        );
    }

    #[tokio::test]
    async fn a_peer_holds_at_most_its_share_of_connections() {
        let (addr, mut admitted) = listen(LIMITS).await;
        let _first = TcpStream::connect(addr).await.unwrap();
        let _second = TcpStream::connect(addr).await.unwrap();
        let held = [
            admitted.recv().await.unwrap(),
            admitted.recv().await.unwrap(),
        ];
        let mut third = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(third.read(&mut buf).await.unwrap(), 0, "closed on accept");
        drop(held);
        // Once one is closed, the peer may connect again.
        let _fourth = TcpStream::connect(addr).await.unwrap();
        let fourth = tokio::time::timeout(Duration::from_secs(5), admitted.recv()).await;
        assert!(fourth.is_ok_and(|c| c.is_some()));
    }
}
