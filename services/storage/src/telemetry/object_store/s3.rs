//! S3 as the object store, through aws-sdk-s3: AWS S3, MinIO, or any S3-compatible server.
//!
//! Against a custom endpoint (MinIO, test servers) the client uses path-style addressing if
//! asked, and computes and checks checksums only when an operation requires them: other stores
//! reject the SDK's default CRC32 trailers. Against AWS the SDK's defaults stay.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::{
    Client,
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation, timeout::TimeoutConfig,
    },
    error::{ProvideErrorMetadata, SdkError},
    primitives::ByteStream,
};
use aws_smithy_http_client::tls;
use bytes::Bytes;

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule as S3Rule,
    LifecycleRuleFilter, Transition, TransitionStorageClass,
};

use crate::telemetry::object_store::{
    LifecycleRule, ObjectError, ObjectKey, ObjectMeta, ObjectStore, with_rule,
};

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
    /// How long one attempt of an operation may take, from connecting until its response (a
    /// GET's head; its body is read after), before it counts as a timeout and is retried: a
    /// server that accepts a request and never answers must not hold a tiering job or an
    /// onboarding step for ever.
    pub attempt_timeout: Duration,
}

/// The default [`S3Config::attempt_timeout`]: long enough for an archive part on a slow link.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long connecting to the store may take (aws-config's default).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3_100);

/// Objects in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    lifecycle: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl S3Store {
    /// GETs an object, or the bytes of an HTTP `Range` header.
    async fn fetch(&self, key: &ObjectKey, range: Option<String>) -> Result<Bytes, ObjectError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_range(range)
            .send()
            .await
            .map_err(|e| classify(key.as_str(), e))?;
        let body =
            output.body.collect().await.map_err(|e| {
                ObjectError::Retryable(format!("{key}: reading the body failed: {e}"))
            })?;
        Ok(body.into_bytes())
    }

    /// Builds a client for a bucket.
    pub async fn connect(config: &S3Config) -> Self {
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(config.attempt_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https)
            .timeout_config(timeouts)
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
            lifecycle: Default::default(),
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

impl S3Store {
    async fn write_rules(&self, rules: Vec<LifecycleRule>) -> Result<(), ObjectError> {
        if rules.is_empty() {
            self.client
                .delete_bucket_lifecycle()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(|e| classify(&self.bucket, e))?;
            return Ok(());
        }
        let rules = rules.iter().map(to_s3).collect::<Result<Vec<_>, _>>()?;
        let configuration = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| ObjectError::Permanent(format!("lifecycle configuration: {e}")))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(configuration)
            .send()
            .await
            .map_err(|e| classify(&self.bucket, e))?;
        Ok(())
    }
}

fn to_s3(rule: &LifecycleRule) -> Result<S3Rule, ObjectError> {
    let transitions = rule.transition_after_days.map(|days| {
        vec![
            Transition::builder()
                .days(i32::try_from(days).unwrap_or(i32::MAX))
                .storage_class(TransitionStorageClass::StandardIa)
                .build(),
        ]
    });
    S3Rule::builder()
        .id(&rule.id)
        .filter(LifecycleRuleFilter::builder().prefix(&rule.prefix).build())
        .status(ExpirationStatus::Enabled)
        .set_transitions(transitions)
        .expiration(
            LifecycleExpiration::builder()
                .days(i32::try_from(rule.expire_after_days).unwrap_or(i32::MAX))
                .build(),
        )
        .build()
        .map_err(|e| ObjectError::Permanent(format!("lifecycle rule `{}`: {e}", rule.id)))
}

fn from_s3(rule: &S3Rule) -> Option<LifecycleRule> {
    Some(LifecycleRule {
        id: rule.id()?.to_owned(),
        prefix: rule
            .filter()
            .and_then(LifecycleRuleFilter::prefix)
            .unwrap_or_default()
            .to_owned(),
        transition_after_days: rule
            .transitions()
            .first()
            .and_then(Transition::days)
            .and_then(|d| u32::try_from(d).ok()),
        expire_after_days: rule
            .expiration()
            .and_then(LifecycleExpiration::days)
            .and_then(|d| u32::try_from(d).ok())?,
    })
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
                "NoSuchKey" | "NotFound" => ObjectError::NotFound(what.to_owned()),
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
        self.fetch(key, None).await
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, ObjectError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let body = self.fetch(key, Some(header)).await?;
        if body.len() as u64 != range.end - range.start {
            return Err(ObjectError::Permanent(format!(
                "{key}: asked for bytes {range:?}, got {}",
                body.len()
            )));
        }
        Ok(body)
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

    async fn lifecycle_rules(&self) -> Result<Vec<LifecycleRule>, ObjectError> {
        match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(output) => {
                let mut rules: Vec<LifecycleRule> =
                    output.rules().iter().filter_map(from_s3).collect();
                rules.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(rules)
            }
            Err(SdkError::ServiceError(context))
                if context.err().code() == Some("NoSuchLifecycleConfiguration") =>
            {
                Ok(Vec::new())
            }
            Err(error) => Err(classify(&self.bucket, error)),
        }
    }

    async fn put_lifecycle_rule(&self, rule: &LifecycleRule) -> Result<(), ObjectError> {
        rule.validate()?;
        let _writer = self.lifecycle.lock().await;
        let rules = with_rule(self.lifecycle_rules().await?, &rule.id, Some(rule));
        self.write_rules(rules).await
    }

    async fn delete_lifecycle_rule(&self, id: &str) -> Result<(), ObjectError> {
        let _writer = self.lifecycle.lock().await;
        let rules = self.lifecycle_rules().await?;
        if rules.iter().all(|r| r.id != id) {
            return Ok(());
        }
        self.write_rules(with_rule(rules, id, None)).await
    }
}
