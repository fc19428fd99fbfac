//! CloudEvents 1.0 over HTTP: every detail of the wire format lives here.
//!
//! Valet sends binary content mode only (attributes in `ce-*` headers, the data as the body, its
//! media type in `Content-Type`), so an image travels as itself with `image/jpeg`. It receives
//! binary mode and, for senders that prefer it, structured mode (`application/cloudevents+json`).
//! Event types are reverse-DNS, past tense and versioned: `io.valet.plate.read.v1`.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub const SPEC_VERSION: &str = "1.0";
const STRUCTURED: &str = "application/cloudevents+json";
pub const JSON: &str = "application/json";

/// One event: the required attributes, the optional ones Valet uses, extensions, and the data.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    /// Unique per source; a redelivery carries the same id, which is what makes handlers idempotent.
    pub id: String,
    pub source: String,
    pub ty: String,
    pub time: Option<DateTime<Utc>>,
    pub subject: Option<String>,
    /// `datacontenttype`: the media type of `data`.
    pub content_type: Option<String>,
    /// Extension attributes (lower-case ASCII letters and digits).
    pub extensions: BTreeMap<String, String>,
    pub data: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CloudEventError {
    #[error("not a CloudEvent: the `{0}` attribute is missing")]
    Missing(&'static str),
    #[error("CloudEvents spec version {0:?} is not supported (only 1.0)")]
    SpecVersion(String),
    #[error("attribute `{0}` is malformed: {1}")]
    Malformed(String, String),
    #[error("the event's data is not the expected {0}: {1}")]
    Data(&'static str, String),
}

impl CloudEvent {
    /// A new event with JSON data.
    pub fn json(id: String, source: &str, ty: &str, data: &impl Serialize) -> CloudEvent {
        let data = serde_json::to_vec(data).expect("event data serialises");
        CloudEvent {
            id,
            source: source.to_owned(),
            ty: ty.to_owned(),
            time: Some(now()),
            subject: None,
            content_type: Some(JSON.to_owned()),
            extensions: BTreeMap::new(),
            data: Bytes::from(data),
        }
    }

    /// The event this one causes, of type `ty`, with JSON data. Its id is derived from this
    /// event's id and `ty`, so handling a redelivered event emits the same id again and the next
    /// function's inbox recognises it.
    pub fn caused(&self, source: &str, ty: &str, data: &impl Serialize) -> CloudEvent {
        let mut caused = CloudEvent::json(derived_id(&self.id, ty), source, ty, data);
        caused.subject.clone_from(&self.subject);
        caused
    }

    /// The data as JSON of type `T`.
    pub fn data_json<T: DeserializeOwned>(&self) -> Result<T, CloudEventError> {
        serde_json::from_slice(&self.data).map_err(|e| CloudEventError::Data("JSON", e.to_string()))
    }

    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions.get(name).map(String::as_str)
    }

    /// Reads an event from an HTTP request or response: binary mode, or structured mode when the
    /// content type says so.
    pub fn from_http(headers: &HeaderMap, body: Bytes) -> Result<CloudEvent, CloudEventError> {
        let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if content_type.is_some_and(|t| t.starts_with(STRUCTURED)) {
            return from_structured(&body);
        }
        let mut attributes = BTreeMap::new();
        for (name, value) in headers {
            if let Some(attribute) = name.as_str().strip_prefix("ce-") {
                let value =
                    value.to_str().map_err(|_| CloudEventError::Malformed(attribute.to_owned(), "not ASCII".into()))?;
                attributes.insert(attribute.to_owned(), percent_decode(value));
            }
        }
        let mut event = from_attributes(attributes)?;
        event.content_type = content_type.map(str::to_owned);
        event.data = body;
        Ok(event)
    }

    /// Writes the attributes as binary-mode headers (`Content-Type` included).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in self.context_attributes() {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(format!("ce-{name}")), HeaderValue::from_str(&percent_encode(&value)))
            {
                headers.insert(name, value);
            }
        }
        if let Some(content_type) = self.content_type.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(axum::http::header::CONTENT_TYPE, content_type);
        }
    }

    /// Every attribute but `datacontenttype` (which binary mode sends as `Content-Type`), as text.
    fn context_attributes(&self) -> Vec<(&str, String)> {
        let mut attributes = vec![
            ("specversion", SPEC_VERSION.to_owned()),
            ("id", self.id.clone()),
            ("source", self.source.clone()),
            ("type", self.ty.clone()),
        ];
        if let Some(time) = self.time {
            attributes.push(("time", time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
        }
        if let Some(subject) = &self.subject {
            attributes.push(("subject", subject.clone()));
        }
        attributes.extend(self.extensions.iter().map(|(name, value)| (name.as_str(), value.clone())));
        attributes
    }

    /// The event in structured mode (a JSON object): how the inbox stores a reply to replay.
    pub fn to_structured(&self) -> String {
        use base64::Engine;
        let mut object: serde_json::Map<String, serde_json::Value> = self
            .context_attributes()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), serde_json::Value::String(value)))
            .collect();
        if let Some(content_type) = &self.content_type {
            object.insert("datacontenttype".to_owned(), serde_json::Value::String(content_type.clone()));
        }
        let json_data = self.content_type.as_deref() == Some(JSON);
        match serde_json::from_slice::<serde_json::Value>(&self.data) {
            // A JSON string stays base64: `"data": "abc"` reads back as the text `abc`, not the
            // JSON `"abc"` it was.
            Ok(value) if json_data && !value.is_string() => {
                object.insert("data".to_owned(), value);
            }
            _ => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(&self.data);
                object.insert("data_base64".to_owned(), serde_json::Value::String(encoded));
            }
        }
        serde_json::Value::Object(object).to_string()
    }

    /// Reads what [`CloudEvent::to_structured`] wrote.
    pub fn from_structured(text: &str) -> Result<CloudEvent, CloudEventError> {
        from_structured(text.as_bytes())
    }

    /// The event as a binary-mode HTTP answer with `status` (200: the next event of a chain).
    pub fn into_response(self, status: axum::http::StatusCode) -> axum::response::Response {
        let mut headers = HeaderMap::new();
        self.write_headers(&mut headers);
        (status, headers, self.data).into_response()
    }
}

use axum::response::IntoResponse;

/// Now, to the microsecond the `time` attribute carries, so an event reads back equal.
pub fn now() -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)
}

/// A fresh random id for an event that starts a chain (a camera frame).
pub fn fresh_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// The id of the `ty` event caused by event `id`: 32 hex digits of SHA-256(id, ty).
pub fn derived_id(id: &str, ty: &str) -> String {
    let digest = Sha256::new().chain_update(id.as_bytes()).chain_update([0]).chain_update(ty.as_bytes()).finalize();
    hex::encode(&digest[..16])
}

fn from_attributes(mut attributes: BTreeMap<String, String>) -> Result<CloudEvent, CloudEventError> {
    // The spec's rule, and what binary mode's header names can carry back out unchanged.
    if let Some(name) = attributes.keys().find(|name| name.is_empty() || !name.bytes().all(is_name_byte)) {
        return Err(CloudEventError::Malformed(
            name.clone(),
            "an attribute name is lower-case letters and digits".into(),
        ));
    }
    // Reserved: in structured mode it is the data itself (a `ce-data` header would become it).
    if attributes.contains_key("data") {
        return Err(CloudEventError::Malformed("data".into(), "`data` is reserved for the event's data".into()));
    }
    let spec = attributes.remove("specversion").ok_or(CloudEventError::Missing("specversion"))?;
    if spec != SPEC_VERSION {
        return Err(CloudEventError::SpecVersion(spec));
    }
    let mut required = |name: &'static str| match attributes.remove(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(CloudEventError::Missing(name)),
    };
    let id = required("id")?;
    let source = required("source")?;
    let ty = required("type")?;
    let time = match attributes.remove("time") {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(&text)
                .map_err(|e| CloudEventError::Malformed("time".into(), e.to_string()))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    // An offset can carry 9999-12-31 into year 10000 (or 0000 back to -1) in UTC, which RFC 3339
    // cannot write: the event would be read once and then never again, from the inbox or the next hop.
    if time.is_some_and(|t| !(0..=9999).contains(&chrono::Datelike::year(&t))) {
        return Err(CloudEventError::Malformed("time".into(), "in UTC it falls outside the years 0000 to 9999".into()));
    }
    let subject = attributes.remove("subject");
    let content_type = attributes.remove("datacontenttype");
    // A media type is printable ASCII; anything else could not be sent as binary mode's Content-Type
    // and read back.
    if content_type.as_ref().is_some_and(|t| !t.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))) {
        return Err(CloudEventError::Malformed("datacontenttype".into(), "a media type is printable ASCII".into()));
    }
    attributes.remove("dataschema");
    Ok(CloudEvent { id, source, ty, time, subject, content_type, extensions: attributes, data: Bytes::new() })
}

fn from_structured(body: &[u8]) -> Result<CloudEvent, CloudEventError> {
    use base64::Engine;
    let serde_json::Value::Object(mut object) = serde_json::from_slice(body)
        .map_err(|e| CloudEventError::Malformed("structured event".into(), e.to_string()))?
    else {
        return Err(CloudEventError::Malformed("structured event".into(), "not a JSON object".into()));
    };
    let had_json_data = matches!(object.get("data"), Some(v) if !v.is_string());
    let data = match (object.remove("data_base64"), object.remove("data")) {
        (Some(serde_json::Value::String(b64)), _) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| CloudEventError::Malformed("data_base64".into(), e.to_string()))?,
        ),
        (_, Some(serde_json::Value::String(text))) => Bytes::from(text),
        (_, Some(value)) => Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
        (_, None) => Bytes::new(),
    };
    let attributes = object
        .into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(text) => (name, text),
            other => (name, other.to_string()),
        })
        .collect();
    let mut event = from_attributes(attributes)?;
    // Structured data given as JSON is JSON, whatever `datacontenttype` was left out.
    if event.content_type.is_none() && had_json_data {
        event.content_type = Some(JSON.to_owned());
    }
    event.data = data;
    Ok(event)
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit()
}

/// Header values carry printable ASCII; anything else (and `%` and `"`) is percent-encoded, as the
/// HTTP binding says.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'%' && byte != b'"' || byte == b' ' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = value.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> CloudEvent {
        let mut event = CloudEvent::json(
            "abc".into(),
            "/valet/test",
            "io.valet.plate.read.v1",
            &serde_json::json!({"text": "AB12"}),
        );
        event.subject = Some("gate-1".into());
        event.extensions.insert("valetcamera".into(), "entry 1 – north".into());
        event
    }

    #[test]
    fn binary_mode_round_trips_every_attribute() {
        let sent = event();
        let mut headers = HeaderMap::new();
        sent.write_headers(&mut headers);
        assert_eq!(headers["ce-specversion"], "1.0");
        assert_eq!(headers["content-type"], "application/json");
        // Non-ASCII travels percent-encoded.
        assert_eq!(headers["ce-valetcamera"], "entry 1 %E2%80%93 north");
        let received = CloudEvent::from_http(&headers, sent.data.clone()).unwrap();
        assert_eq!(received, sent);
    }

    #[test]
    fn an_event_without_a_required_attribute_is_refused_by_name() {
        for missing in ["specversion", "id", "source", "type"] {
            let mut headers = HeaderMap::new();
            event().write_headers(&mut headers);
            headers.remove(format!("ce-{missing}").as_str());
            assert_eq!(CloudEvent::from_http(&headers, Bytes::new()), Err(CloudEventError::Missing(missing)));
        }
        let mut headers = HeaderMap::new();
        event().write_headers(&mut headers);
        headers.insert("ce-specversion", HeaderValue::from_static("0.3"));
        assert!(matches!(CloudEvent::from_http(&headers, Bytes::new()), Err(CloudEventError::SpecVersion(_))));
        headers.insert("ce-specversion", HeaderValue::from_static("1.0"));
        headers.insert("ce-time", HeaderValue::from_static("yesterday"));
        assert!(matches!(CloudEvent::from_http(&headers, Bytes::new()), Err(CloudEventError::Malformed(..))));
    }

    #[test]
    fn structured_mode_is_read_with_json_or_base64_data() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/cloudevents+json; charset=utf-8"));
        let body = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t.v1","datacontenttype":"image/jpeg","data_base64":"/9j/"}"#;
        let event = CloudEvent::from_http(&headers, Bytes::from(body)).unwrap();
        assert_eq!(event.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(&event.data[..], &[0xff, 0xd8, 0xff]);
        let body = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t.v1","data":{"a":1}}"#;
        let event = CloudEvent::from_http(&headers, Bytes::from(body)).unwrap();
        assert_eq!(event.data_json::<serde_json::Value>().unwrap(), serde_json::json!({"a": 1}));
    }

    #[test]
    fn structured_json_round_trips_json_and_binary_data() {
        let json = event();
        assert_eq!(CloudEvent::from_structured(&json.to_structured()).unwrap(), json);
        let mut image = event();
        image.content_type = Some("image/jpeg".into());
        image.data = Bytes::from_static(&[0xff, 0xd8, 0xff, 0x00]);
        assert_eq!(CloudEvent::from_structured(&image.to_structured()).unwrap(), image);
    }

    /// Found by `fuzz/` (cloudevent_binary, cloudevent_structured): an attribute name the spec
    /// forbids was taken, then lost or changed on the way back out (`A` became `a` in a header name,
    /// `x y` could not be one at all, and a `ce-data` header became the data in structured mode).
    #[test]
    fn attribute_names_other_than_lower_case_letters_and_digits_are_refused() {
        for name in ["dataent-type:contenttype", "Valetcamera", "x y", "ext_1", ""] {
            let body = format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t","{name}":"v"}}"#);
            let error = CloudEvent::from_structured(&body).unwrap_err();
            assert_eq!(
                error,
                CloudEventError::Malformed(name.into(), "an attribute name is lower-case letters and digits".into())
            );
        }
        let mut headers = HeaderMap::new();
        event().write_headers(&mut headers);
        headers.insert("ce-ext_1", HeaderValue::from_static("v"));
        assert!(
            matches!(CloudEvent::from_http(&headers, Bytes::new()), Err(CloudEventError::Malformed(n, _)) if n == "ext_1")
        );
        // `data` is reserved: as an extension it was written over the data in structured mode.
        let mut headers = HeaderMap::new();
        event().write_headers(&mut headers);
        headers.insert("ce-data", HeaderValue::from_static("v"));
        assert!(
            matches!(CloudEvent::from_http(&headers, Bytes::new()), Err(CloudEventError::Malformed(n, _)) if n == "data")
        );
    }

    /// Found by `fuzz/` (cloudevent_structured): a non-ASCII `datacontenttype` was taken, then written
    /// as a `Content-Type` header that binary mode reads as no content type at all.
    #[test]
    fn a_datacontenttype_that_is_not_printable_ascii_is_refused() {
        let body = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"applicationћson"}"#;
        let error = CloudEvent::from_structured(body).unwrap_err();
        assert!(matches!(&error, CloudEventError::Malformed(n, _) if n == "datacontenttype"), "{error:?}");
    }

    /// Seen while writing `fuzz/`'s cloudevent_binary round trip, and confirmed by that target:
    /// `"abc"` as JSON data went out as `"data": "abc"` and came back as the text `abc`.
    #[test]
    fn json_data_that_is_a_string_round_trips_through_structured_mode() {
        let mut sent = event();
        sent.data = Bytes::from_static(br#""abc""#);
        assert_eq!(CloudEvent::from_structured(&sent.to_structured()).unwrap(), sent);
    }

    /// Found by `fuzz/`'s cloudevent_structured in a 10-minute run: a number with more digits than
    /// a double holds was read to a nearby double, not the nearest, so each trip through structured
    /// mode could move it by a unit in the last place. serde_json's `float_roundtrip` reads it exactly.
    #[test]
    fn a_long_number_in_json_data_survives_structured_mode_unchanged() {
        let mut sent = event();
        sent.data = Bytes::from_static(br#"{"n":1666666666666666666666666666666666666666}"#);
        let once = CloudEvent::from_structured(&sent.to_structured()).unwrap();
        let twice = CloudEvent::from_structured(&once.to_structured()).unwrap();
        let value = |e: &CloudEvent| serde_json::from_slice::<serde_json::Value>(&e.data).unwrap();
        assert_eq!(value(&once), value(&sent));
        assert_eq!(value(&twice), value(&once));
    }

    /// Seen while writing `fuzz/`'s cloudevent_binary round trip, and confirmed by that target: a
    /// time whose offset carries it into year 10000 in UTC was read, then written as `+10000-…`,
    /// which no reader (Valet included) takes.
    #[test]
    fn a_time_outside_the_years_rfc_3339_can_write_in_utc_is_refused() {
        for time in ["9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+00:01"] {
            let mut headers = HeaderMap::new();
            event().write_headers(&mut headers);
            headers.insert("ce-time", HeaderValue::from_static(time));
            let error = CloudEvent::from_http(&headers, Bytes::new()).unwrap_err();
            assert!(matches!(&error, CloudEventError::Malformed(n, _) if n == "time"), "{time}: {error:?}");
        }
        let mut headers = HeaderMap::new();
        event().write_headers(&mut headers);
        headers.insert("ce-time", HeaderValue::from_static("9999-12-31T23:59:59+01:00"));
        assert!(CloudEvent::from_http(&headers, Bytes::new()).is_ok());
    }

    #[test]
    fn a_caused_event_has_the_same_id_however_often_its_cause_is_handled() {
        let cause = event();
        let first = cause.caused("/valet/gate", "io.valet.session.opened.v1", &1);
        let again = cause.caused("/valet/gate", "io.valet.session.opened.v1", &1);
        assert_eq!(first.id, again.id);
        assert_ne!(first.id, cause.caused("/valet/gate", "io.valet.session.closed.v1", &1).id);
        assert_ne!(first.id, cause.id);
        assert_eq!(first.id.len(), 32);
    }
}
