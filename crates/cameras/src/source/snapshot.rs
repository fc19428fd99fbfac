//! Snapshot cameras: a URL that answers one `image/jpeg` per GET, polled every
//! [`CameraConfig::every`](crate::CameraConfig::every).
//!
//! A poll that fails (refused, an HTTP error, another content type, no answer within the stall
//! time, a body over [`MAX_FRAME_BYTES`]) ends the connection and the source reconnects with
//! backoff; a body that is not a JPEG is counted as an error and polling goes on.

use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, timeout_at};

use super::{Feed, MAX_FRAME_BYTES, SourceError, describe_start, http_error, looks_like_jpeg};

/// The fastest a snapshot URL is polled, whatever the configuration says.
const MIN_EVERY: Duration = Duration::from_millis(100);

pub(super) fn is_jpeg_type(media_type: &str) -> bool {
    // `image/jpg` and `image/pjpeg` are wrong, and cameras send them.
    matches!(media_type, "image/jpeg" | "image/jpg" | "image/pjpeg")
}

/// GETs `url`, answering within `stall`, with a success status.
pub(super) async fn get(
    client: &reqwest::Client,
    url: &str,
    stall: Duration,
) -> Result<reqwest::Response, SourceError> {
    let response = match timeout_at(Instant::now() + stall, client.get(url).send()).await {
        Err(_) => return Err(SourceError::Stalled(stall)),
        Ok(Err(error)) => return Err(http_error("could not reach the camera", error)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        return Err(SourceError::Camera(format!("the camera answered HTTP {status}")));
    }
    Ok(response)
}

/// Reads the snapshot in `first`, then GETs one every `every` until a poll fails.
pub(super) async fn poll(
    client: &reqwest::Client,
    url: &str,
    every: Duration,
    first: reqwest::Response,
    feed: &mut Feed<'_>,
) -> SourceError {
    let mut ticks = tokio::time::interval(every.max(MIN_EVERY));
    // A slow camera delays the next poll rather than causing a burst of them.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut response = first;
    loop {
        match body(response, Instant::now() + feed.stall, feed.stall).await {
            Ok(jpeg) if looks_like_jpeg(&jpeg) => feed.frame(jpeg),
            Ok(other) => feed.error(format!("the camera's snapshot is not a JPEG ({})", describe_start(&other))),
            Err(error) => return error,
        }
        ticks.tick().await;
        response = match get(client, url, feed.stall).await {
            Ok(response) => response,
            Err(error) => return error,
        };
        let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let media_type = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !is_jpeg_type(&media_type) {
            return SourceError::Camera(format!(
                "the snapshot URL answered Content-Type {:?} instead of image/jpeg",
                content_type.unwrap_or("")
            ));
        }
    }
}

/// The response's body, refused past [`MAX_FRAME_BYTES`] before it is buffered.
async fn body(mut response: reqwest::Response, deadline: Instant, stall: Duration) -> Result<Vec<u8>, SourceError> {
    if let Some(length) = response.content_length()
        && length > MAX_FRAME_BYTES as u64
    {
        return Err(SourceError::TooLarge(usize::try_from(length).unwrap_or(usize::MAX)));
    }
    let mut jpeg = Vec::with_capacity(response.content_length().map_or(64 * 1024, |n| n as usize));
    loop {
        match timeout_at(deadline, response.chunk()).await {
            Err(_) => return Err(SourceError::Stalled(stall)),
            Ok(Err(error)) => return Err(http_error("reading the snapshot", error)),
            Ok(Ok(None)) => return Ok(jpeg),
            Ok(Ok(Some(chunk))) => {
                if jpeg.len() + chunk.len() > MAX_FRAME_BYTES {
                    return Err(SourceError::TooLarge(jpeg.len() + chunk.len()));
                }
                jpeg.extend_from_slice(&chunk);
            }
        }
    }
}
