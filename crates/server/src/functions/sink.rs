//! `K_SINK`: where a function posts the events it emits when Knative's SinkBinding (or an
//! operator wiring functions by hand) names one. Delivery is retried with exponential backoff on
//! the answers Knative itself retries (connection errors, timeouts, 404, 409, 429, 5xx); when the
//! attempts run out the error goes back to whoever sent this function its event, so that sender
//! retries in turn and nothing is dropped silently.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};

use super::CloudEvent;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct Sink {
    url: reqwest::Url,
    client: reqwest::Client,
    attempts: u32,
    first_backoff: Duration,
}

impl Sink {
    /// A sink at `url`, tried `attempts` times (at least once), waiting `first_backoff`, then
    /// twice as long each time.
    pub fn new(url: &str, attempts: u32, first_backoff: Duration) -> anyhow::Result<Sink> {
        let url = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("K_SINK {url:?} is not a URL: {e}"))?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(Sink { url, client, attempts: attempts.max(1), first_backoff })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Posts `event` in binary mode until the sink accepts it (any 2xx).
    pub async fn deliver(&self, event: &CloudEvent) -> Result<(), ApiError> {
        let mut headers = HeaderMap::new();
        event.write_headers(&mut headers);
        let mut backoff = self.first_backoff;
        let mut last_error = String::new();
        for attempt in 1..=self.attempts {
            let sent =
                self.client.post(self.url.clone()).headers(headers.clone()).body(event.data.clone()).send().await;
            match sent {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                Ok(answer) => {
                    let status = answer.status();
                    let body = answer.text().await.unwrap_or_default();
                    last_error =
                        format!("{} answered {status}: {}", self.url, body.chars().take(300).collect::<String>());
                    if !retryable(status) {
                        break;
                    }
                }
                Err(e) => last_error = format!("{}: {e}", self.url),
            }
            if attempt < self.attempts {
                tracing::warn!(event = %event.id, ty = %event.ty, attempt, error = %last_error, "sink did not take the event; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(ApiError::SinkFailed(last_error))
    }
}

/// The answers Knative's own delivery retries.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || matches!(status, StatusCode::NOT_FOUND | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS)
        || status == StatusCode::REQUEST_TIMEOUT
}
