//! `POST /v1/classify`: one image (raw body or multipart) → occupied/free with scores and timings.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use valet_store::ClassificationRecord;

use crate::AppState;
use crate::api::{ClassifyAnswer, ImageInfo, Scores, Timings};
use crate::auth::AuthedDevice;
use crate::error::ApiError;

#[utoipa::path(
    post,
    path = "/v1/classify",
    operation_id = "classify",
    tag = "devices",
    security(("deviceKey" = [])),
    summary = "Classify one parking-space image (raw body or multipart `image`)",
    description = "Classify one parking-space image (raw body or multipart `image`).",
    request_body(content((inline(crate::routes::openapi::Jpeg) = "image/jpeg"), (inline(crate::routes::openapi::Jpeg) = "image/png"))),
    responses((status = 200, description = "OK", body = ClassifyAnswer))
)]
pub async fn classify(
    State(state): State<AppState>,
    AuthedDevice(device): AuthedDevice,
    request: Request,
) -> Result<Json<ClassifyAnswer>, ApiError> {
    let started = Instant::now();
    let received_at = chrono::Utc::now();
    let mut record = ClassificationRecord {
        device: device.id,
        received_at,
        bytes: 0,
        width: None,
        height: None,
        label: None,
        p_occupied: None,
        outcome: String::new(),
        receive_ms: 0.0,
        decode_ms: None,
        model_ms: None,
        total_ms: 0.0,
    };
    let result = answer(&state, request, started, &mut record).await;
    record.total_ms = ms(started);
    record.outcome = match &result {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code().to_owned(),
    };
    let id = state.store().record_classification(&record).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut answer = result?;
    answer.record_id = id;
    answer.timings_ms.total = record.total_ms;
    tracing::info!(label = %answer.label, bytes = record.bytes, total_ms = record.total_ms, "classified");
    Ok(Json(answer))
}

async fn answer(
    state: &AppState,
    request: Request,
    started: Instant,
    record: &mut ClassificationRecord,
) -> Result<ClassifyAnswer, ApiError> {
    let body = receive(state, request).await;
    let receive_ms = ms(started);
    record.receive_ms = receive_ms;
    let body = body?;
    record.bytes = body.len() as u64;

    // Only `decode_concurrency` images are decoded at once: a 162 MP photo costs ~100 MB while it
    // is decoded, and the blocking pool would otherwise run as many as arrive.
    let _permit = state.admit(crate::admission::Work::Bulk).await?;
    let worker = state.clone();
    let (decoded, verdict, decode_ms, model_ms) = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let decoded = valet_imaging::decode(&body, &worker.inner.limits)?;
        let decode_ms = ms(t);
        let t = Instant::now();
        let verdicts = worker
            .inner
            .classifier
            .classify(std::slice::from_ref(&decoded.image))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok::<_, ApiError>((decoded, verdicts[0], decode_ms, ms(t)))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("classification task failed: {e}")))??;

    record.width = Some(decoded.source_width);
    record.height = Some(decoded.source_height);
    record.decode_ms = Some(decode_ms);
    record.model_ms = Some(model_ms);
    record.label = Some(verdict.state.to_string());
    record.p_occupied = Some(f64::from(verdict.p_occupied));

    Ok(ClassifyAnswer {
        label: verdict.state.to_string(),
        scores: Scores { occupied: verdict.p_occupied, free: 1.0 - verdict.p_occupied },
        image: ImageInfo {
            format: format_name(decoded.format).to_owned(),
            width: decoded.source_width,
            height: decoded.source_height,
            bytes: record.bytes,
            decoded_width: decoded.image.width(),
            decoded_height: decoded.image.height(),
        },
        timings_ms: Timings { receive: receive_ms, decode: decode_ms, model: model_ms, total: 0.0 },
        record_id: 0,
    })
}

/// The image bytes of the request, within the size limit and the body timeout.
pub(super) async fn receive(state: &AppState, request: Request) -> Result<Bytes, ApiError> {
    let limit = state.inner.max_body_bytes;
    let declared =
        request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    // Refuse before reading a byte when the client announces too much.
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let timeout = state.inner.body_timeout;
    let read = async {
        if multipart { read_multipart(request, state, limit).await } else { read_raw(request.into_body(), limit).await }
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| ApiError::BodyTimeout(timeout.as_secs()))?
}

async fn read_raw(mut body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BodyBroken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(ApiError::BodyTooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// The first part that carries a file (or is named `image`/`file`).
pub(crate) async fn read_multipart<S: Send + Sync>(request: Request, state: &S, limit: u64) -> Result<Bytes, ApiError> {
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::NoImage(format!("malformed multipart body: {}", e.body_text())))?;
    while let Some(mut field) = form.next_field().await.map_err(|e| multipart_error(e, limit))? {
        let is_image = field.file_name().is_some() || matches!(field.name(), Some("image" | "file"));
        if !is_image {
            continue;
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(ApiError::BodyTooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        return Ok(buf.freeze());
    }
    Err(ApiError::NoImage("the multipart body has no file part (name it `image` or give it a filename)".into()))
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge { limit }
    } else {
        ApiError::BodyBroken(e.body_text())
    }
}

fn format_name(format: valet_imaging::ImageFormat) -> &'static str {
    match format {
        valet_imaging::ImageFormat::Jpeg => "jpeg",
        valet_imaging::ImageFormat::Png => "png",
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
