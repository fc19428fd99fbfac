//! What more than one fuzz target checks: that two CloudEvents are the same event as far as the
//! wire formats can tell (both CloudEvents targets compare an event with its own round trip).

use valet_server::functions::CloudEvent;
use valet_server::functions::cloudevents::JSON;

/// Equal but for what the wire format cannot carry: `time` below a microsecond, and the spacing
/// of JSON data.
pub fn assert_same_event(a: &CloudEvent, b: &CloudEvent) {
    let micros = |e: &CloudEvent| e.time.map(|t| chrono::SubsecRound::trunc_subsecs(t, 6));
    assert_eq!((&a.id, &a.source, &a.ty, &a.subject), (&b.id, &b.source, &b.ty, &b.subject));
    assert_eq!((micros(a), &a.content_type, &a.extensions), (micros(b), &b.content_type, &b.extensions));
    let json = |e: &CloudEvent| serde_json::from_slice::<serde_json::Value>(&e.data).ok();
    if a.content_type.as_deref() == Some(JSON) && json(a).is_some() {
        assert_eq!(json(a), json(b), "JSON data changed");
    } else {
        assert_eq!(a.data, b.data, "data changed");
    }
}
