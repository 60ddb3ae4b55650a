//! S3 as the object store, through aws-sdk-s3: AWS S3, MinIO, or any S3-compatible server.
//!
//! Against a custom endpoint (MinIO, test servers) the client uses path-style addressing if
//! asked, and computes and checks checksums only when an operation requires them: other stores
//! reject the SDK's default CRC32 trailers. Against AWS the SDK's defaults stay.

use async_trait::async_trait;
use aws_sdk_s3::{
    Client,
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation,
    },
    error::{ProvideErrorMetadata, SdkError},
    primitives::ByteStream,
};
use bytes::Bytes;

use super::{ObjectError, ObjectKey, ObjectMeta, ObjectStore};

/// How to reach a bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The endpoint of an S3-compatible store; `None` means AWS.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// Whether to address buckets by path (`http://host/bucket/key`), as MinIO and test servers
    /// want.
    pub path_style: bool,
    /// Static credentials (access key id, secret); `None` uses the default AWS credential chain.
    pub credentials: Option<(String, String)>,
}

/// Objects in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    /// Builds a client for a bucket.
    pub async fn connect(config: &S3Config) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()));
        if let Some((id, secret)) = &config.credentials {
            loader =
                loader.credentials_provider(Credentials::new(id, secret, None, None, "mfg-config"));
        }
        let shared = loader.load().await;
        let mut builder =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .endpoint_url(endpoint)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        }
    }

    /// Creates the bucket if it does not exist (for development and tests; production buckets
    /// are made by whoever owns the account).
    pub async fn ensure_bucket(&self) -> Result<(), ObjectError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(error) => match classify(&self.bucket, error) {
                ObjectError::NotFound(_) => {
                    self.client
                        .create_bucket()
                        .bucket(&self.bucket)
                        .send()
                        .await
                        .map_err(|e| classify(&self.bucket, e))?;
                    Ok(())
                }
                other => Err(other),
            },
        }
    }
}

/// Classifies an SDK error: 404 is not found; throttling, 5xx, timeouts and network failures
/// are retryable; the rest (403, 400, a missing bucket…) is permanent.
fn classify<E, R>(what: &str, error: SdkError<E, R>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or("");
            let detail = format!(
                "{what}: {} ({code})",
                context.err().message().unwrap_or("no message")
            );
            match code {
                "NoSuchKey" | "NotFound" | "NoSuchBucket" => ObjectError::NotFound(what.to_owned()),
                "SlowDown"
                | "Throttling"
                | "ThrottlingException"
                | "RequestTimeout"
                | "InternalError"
                | "ServiceUnavailable" => ObjectError::Retryable(detail),
                _ => ObjectError::Permanent(detail),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ObjectError::Retryable(format!("{what}: {}", aws_smithy_error_text(&error)))
        }
        _ => ObjectError::Permanent(format!("{what}: {}", aws_smithy_error_text(&error))),
    }
}

fn aws_smithy_error_text<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: &SdkError<E, R>,
) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify(key.as_str(), e))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, ObjectError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| classify(key.as_str(), e))?;
        let body =
            output.body.collect().await.map_err(|e| {
                ObjectError::Retryable(format!("{key}: reading the body failed: {e}"))
            })?;
        Ok(body.into_bytes())
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ObjectError> {
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| classify(key.as_str(), e))?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: output
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| classify(prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| ObjectKey::new(k).ok()) else {
                    continue;
                };
                let size = object
                    .size()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0);
                objects.push(ObjectMeta { key, size });
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ObjectError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => match classify(key.as_str(), error) {
                ObjectError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}
