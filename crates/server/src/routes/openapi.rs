//! `GET /openapi.json`: the OpenAPI 3.1 description of every route, written out here next to the
//! router. A test requests every documented operation and fails on any the router does not know,
//! so the two cannot drift apart silently.

use axum::Json;
use serde_json::{Map, Value, json};

/// Who may call an operation, as the `security` requirement and a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anyone,
    Device,
    Driver,
    Operator,
    /// An operator's key with the admin flag (`--role admin`): the garage's rules.
    Admin,
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub caller: Caller,
    pub summary: &'static str,
    /// The request body's schema name under `components/schemas`, if it takes one.
    pub body: Option<&'static str>,
    /// The success status and what it returns.
    pub answer: (u16, &'static str),
}

const fn op(
    method: &'static str,
    path: &'static str,
    caller: Caller,
    summary: &'static str,
    body: Option<&'static str>,
    answer: (u16, &'static str),
) -> Operation {
    Operation { method, path, caller, summary, body, answer }
}

use Caller::{Admin, Anyone, Device, Driver, Operator};

pub const OPERATIONS: &[Operation] = &[
    op("get", "/healthz", Anyone, "Liveness: the process answers.", None, (200, "`{\"status\":\"ok\"}`")),
    op("get", "/readyz", Anyone, "Readiness: the database answers.", None, (200, "`{\"status\":\"ready\"}`")),
    op("get", "/openapi.json", Anyone, "This document.", None, (200, "OpenAPI 3.1")),
    op(
        "get",
        "/metrics",
        Anyone,
        "Prometheus metrics of this process: gate decisions, charges, plate reads, function handling times, camera \
         health, lot spaces, review queue, pending charges, dead letters.",
        None,
        (200, "OpenMetrics text"),
    ),
    op(
        "post",
        "/v1/classify",
        Device,
        "Classify one parking-space image (raw body or multipart `image`).",
        None,
        (200, "ClassifyAnswer"),
    ),
    op(
        "post",
        "/v1/plate-reads",
        Device,
        "Report a plate read at an entry or exit gate; answers with the barrier and the exit screen.",
        Some("PlateReadEvent"),
        (200, "GateAnswer"),
    ),
    op(
        "post",
        "/v1/gates/{camera}/frames",
        Device,
        "A gate camera's frame (`?direction=entry|exit`, JPEG body; `Idempotency-Key` makes a retry the same event): \
         plate read, gate decision, charge, as far as this process's functions go.",
        None,
        (200, "ChainAnswer"),
    ),
    op(
        "post",
        "/v1/drivers",
        Anyone,
        "Sign up with plates and a payment method (never a card number); returns the driver's token and \
         recovery code once. A plate another account holds is refused without saying so (409 `plate_unavailable`).",
        Some("SignUp"),
        (201, "SignedUpAnswer"),
    ),
    op(
        "post",
        "/v1/drivers/sign-in",
        Anyone,
        "Sign in on a new device with a plate on the account and its recovery code: a fresh token, and a new code \
         (each code signs in once; other devices are signed out). A wrong plate or code is one 401 `sign_in_refused`.",
        Some("SignIn"),
        (200, "SignedInAnswer"),
    ),
    op(
        "post",
        "/v1/webhooks/stripe",
        Anyone,
        "Stripe's webhook deliveries, signed (`Stripe-Signature`, VALET_STRIPE_WEBHOOK_SECRET): \
         payment_intent.succeeded, payment_intent.payment_failed and payment_intent.requires_action settle a charge \
         whose outcome Valet did not hear; charge.refunded records refunds made in Stripe's dashboard. Each event \
         acts once; a forged, altered or stale signature is 400 and changes nothing; 404 without a secret.",
        None,
        (
            200,
            "`{\"event\":\"evt_…\",\"type\":\"…\",\"taken\":\"settled|already_known|refunds_recorded|not_ours|contradicts|ignored\",\"again\":false}`",
        ),
    ),
    op(
        "post",
        "/v1/card-setups",
        Anyone,
        "With Stripe: start saving a card in Stripe's own card fields; sign up or pay with the returned card_setup.",
        None,
        (201, "CardSetupAnswer"),
    ),
    op(
        "post",
        "/v1/lots/{id}/frames",
        Device,
        "A bay camera's frame (`?camera=`): read every space, smooth, store, and publish the new counts.",
        None,
        (200, "LotUpdate"),
    ),
    op(
        "get",
        "/v1/lots/{id}/availability",
        Anyone,
        "Free, occupied and unknown spaces per zone, level and lot.",
        None,
        (200, "Availability"),
    ),
    op(
        "get",
        "/v1/lots/{id}/events",
        Anyone,
        "Server-sent events: `availability` at once, then `counts` after every frame.",
        None,
        (200, "text/event-stream"),
    ),
    op(
        "post",
        "/v1/lots/{id}/labels",
        Operator,
        "Label bays of a camera's latest frame to calibrate its occupancy model: `spaces` corrected, the frame \
         confirmed (`confirm: true`) or the lot empty (`empty: true`); a fit of the camera's adapter follows. 409 \
         `no_frame_yet` before the camera's first frame, 409 `label_exists` for a bay labelled on that frame \
         already, 422 `invalid_label` for a bay not in the layout (naming the known ones). Audited.",
        Some("LabelBody"),
        (201, "`{\"lot\", \"camera\", \"frame\", \"labels\"}`"),
    ),
    op(
        "get",
        "/v1/lots/{id}/calibration",
        Operator,
        "Per camera: labels, fits (both leave-one-frame-out accuracies), the active adapter, and the bays the \
         model is least sure of (label those next).",
        None,
        (200, "`{\"lot\", \"cameras\": [CameraCalibration]}`"),
    ),
    op(
        "post",
        "/v1/lots/{id}/cameras/{camera}/adapter",
        Operator,
        "Choose the camera's adapter (`{\"version\": N}`) or roll back to the universal model \
         (`{\"version\": null}`); every replica swaps within seconds. 404 `unknown_adapter` for a version the \
         camera never had. Audited.",
        Some("AdapterBody"),
        (200, "CameraCalibration"),
    ),
    op("get", "/v1/me", Driver, "The signed-up driver's account.", None, (200, "DriverView")),
    op("post", "/v1/me/plates", Driver, "Add a plate to the account.", Some("PlateBody"), (201, "nothing")),
    op(
        "post",
        "/v1/me/recovery-code",
        Driver,
        "A new recovery code, shown once; the old one stops working.",
        None,
        (201, "RecoveryCodeAnswer"),
    ),
    op("post", "/v1/me/sign-out", Driver, "Sign this token out: it opens nothing from now on.", None, (204, "nothing")),
    op(
        "delete",
        "/v1/me/plates/{plate}",
        Driver,
        "Remove a plate (refused with 409 while its car is inside).",
        None,
        (204, "nothing"),
    ),
    op(
        "put",
        "/v1/me/email",
        Driver,
        "Set the address receipts and failed-charge notices are mailed to (`{\"email\": null}` removes it); only \
         stays from now on are mailed. 400 for an address that is not one.",
        Some("EmailBody"),
        (204, "nothing"),
    ),
    op("get", "/v1/me/sessions", Driver, "The driver's stays, newest first (`?limit=`).", None, (200, "[SessionView]")),
    op(
        "post",
        "/v1/me/sessions/{id}/payments",
        Driver,
        "Pay one of the driver's unpaid stays now with the card on the account (the link in a failed-charge \
         notice). 404 for a stay of another account, 409 `not_retryable` for one that is not unpaid. Audited.",
        None,
        (201, "Charge"),
    ),
    op("get", "/v1/me/receipts", Driver, "The driver's receipts, newest first (`?limit=`).", None, (200, "[Receipt]")),
    op(
        "get",
        "/v1/pay/{link}",
        Anyone,
        "What an unregistered car owes if paid now; the link from the gate is the credential.",
        None,
        (200, "Quote"),
    ),
    op(
        "post",
        "/v1/pay/{link}",
        Anyone,
        "Pay by plate: closes the stay, charges the payment method; the car may then leave.",
        Some("PayBody"),
        (200, "PaidAnswer"),
    ),
    op(
        "get",
        "/v1/sessions",
        Operator,
        "Sessions, newest first (`?state=open|closed|paid|unpaid|in_review&limit=`).",
        None,
        (200, "[SessionView]"),
    ),
    op(
        "get",
        "/v1/sessions/{id}",
        Operator,
        "One session with its charges, refunds and receipt.",
        None,
        (200, "SessionDetail"),
    ),
    op(
        "post",
        "/v1/sessions/{id}/refunds",
        Operator,
        "Refund a session's charge (all, or `amount_minor`); send `Idempotency-Key` to make retries safe. Audited.",
        Some("RefundBody"),
        (201, "RefundView"),
    ),
    op(
        "post",
        "/v1/sessions/{id}/charges",
        Operator,
        "Charge an unpaid stay again (its card was refused and the driver has sorted it out), under a new \
         attempt's key, to the card the account holds now. Audited. 409 `not_retryable` for a stay that is not \
         unpaid or that nobody signed up for (it is paid by its link).",
        Some("Why"),
        (201, "Charge: `state` succeeded, failed or requested"),
    ),
    op("get", "/v1/review-items", Operator, "The open review queue, oldest first.", None, (200, "[ReviewView]")),
    op(
        "post",
        "/v1/review-items/{id}/decision",
        Operator,
        "Decide a review item, optionally marking its session paid or unpaid or repricing it. Audited.",
        Some("ReviewDecisionBody"),
        (200, "ReviewView"),
    ),
    op(
        "post",
        "/v1/review-items/{id}/plate",
        Operator,
        "Correct a misread plate from the camera's image: the open stay the item was raised over gets it. Audited.",
        Some("PlateCorrectionBody"),
        (200, "ReviewView"),
    ),
    op("get", "/v1/tariff", Operator, "The active tariff and its version.", None, (200, "TariffView")),
    op(
        "put",
        "/v1/tariff",
        Admin,
        "Activate a new tariff for every later exit. Audited.",
        Some("TariffChangeBody"),
        (200, "TariffView"),
    ),
    op("get", "/v1/lists", Operator, "The allow and deny lists.", None, (200, "PlateLists")),
    op(
        "post",
        "/v1/lists",
        Admin,
        "Put a plate on the allow or deny list, or take it off (`none`). Audited.",
        Some("ListChangeBody"),
        (204, "nothing"),
    ),
    op("get", "/v1/permits", Operator, "Permits valid now.", None, (200, "[PermitTerms]")),
    op("post", "/v1/permits", Admin, "Save a monthly permit. Audited.", Some("PermitBody"), (201, "PermitTerms")),
    op(
        "get",
        "/v1/lanes",
        Operator,
        "The gate lanes: each camera that has read a plate, its direction, first and last seen.",
        None,
        (200, "`[{\"camera\", \"direction\", \"first_seen\", \"last_seen\"}]`"),
    ),
    op(
        "get",
        "/v1/cameras",
        Operator,
        "The gate cameras: each pulled camera (`kind: pulled`) with its URL redacted and its health where this \
         process pulls it (connected, last frame, fps, frames read and dropped, passages, errors, reconnects, last \
         error), then each lane whose camera pushes frames or reads (`kind: pushed`).",
        None,
        (200, "[CameraView]"),
    ),
    op(
        "post",
        "/v1/cameras",
        Admin,
        "Add a pulled gate camera (`rtsp://` through ffmpeg, `http://` MJPEG or snapshot polled every `every_ms`, \
         default 500); every plate-reader replica pulls it within seconds, one plate read per passing car. 422 \
         `invalid_camera` says what is wrong; 409 `camera_exists` for a name already taken.",
        Some("NewCamera"),
        (201, "CameraView"),
    ),
    op(
        "delete",
        "/v1/cameras/{name}",
        Admin,
        "Remove a pulled gate camera; its pulls stop within seconds. 404 for a name not pulled.",
        None,
        (204, "nothing"),
    ),
    op(
        "post",
        "/v1/barriers/{camera}/open",
        Operator,
        "Lift a barrier by hand (intercom, jammed reader): a lane whose camera has read a plate (404 \
         `unknown_lane` lists the known ones), sent over MQTT (503 `barrier_not_reached` when no broker is \
         configured or connected), then audited.",
        Some("Why"),
        (200, "`{\"camera\", \"barrier\": \"lift\", \"sent_to\": topic}`"),
    ),
    op(
        "get",
        "/v1/audit",
        Operator,
        "Audit events since `?since=` (RFC 3339; default 24 h).",
        None,
        (200, "[AuditEvent]"),
    ),
    op(
        "get",
        "/v1/dead-letters",
        Operator,
        "Events the broker gave up delivering, newest first (`?limit=`).",
        None,
        (200, "[DeadLetter]"),
    ),
];

pub async fn serve() -> Json<Value> {
    Json(document())
}

/// The whole document, built from [`OPERATIONS`] and the request schemas below.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        let mut operation = json!({
            "summary": op.summary,
            "tags": [caller_tag(op.caller)],
            "responses": {
                op.answer.0.to_string(): { "description": op.answer.1 },
                "default": {
                    "description": "An error: a stable code and a sentence.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorAnswer" } } }
                }
            }
        });
        if op.caller != Anyone {
            operation["security"] = json!([{ caller_scheme(op.caller): [] }]);
        }
        let parameters: Vec<Value> = path_parameters(op.path)
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{body}") } } }
            });
        }
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Valet",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A parking garage with nobody in the booth: plate reads in, sessions, charges and receipts out. \
                            Money is integer minor units with an ISO 4217 currency; times are RFC 3339 UTC."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "deviceKey": { "type": "http", "scheme": "bearer", "description": "`valet devices add NAME`" },
                "operatorKey": { "type": "http", "scheme": "bearer", "description": "`valet devices add NAME --role operator` (or `admin`)" },
                "adminKey": { "type": "http", "scheme": "bearer", "description": "`valet devices add NAME --role admin`" },
                "driverToken": { "type": "http", "scheme": "bearer", "description": "the `token` of `POST /v1/drivers`" }
            },
            "schemas": schemas()
        }
    })
}

fn caller_tag(caller: Caller) -> &'static str {
    match caller {
        Anyone => "public",
        Device => "devices",
        Driver => "drivers",
        Operator | Admin => "operators",
    }
}

fn caller_scheme(caller: Caller) -> &'static str {
    match caller {
        Device => "deviceKey",
        Driver => "driverToken",
        Operator | Anyone => "operatorKey",
        Admin => "adminKey",
    }
}

/// `{name}` segments of a path template.
pub fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn why() -> Value {
    json!({ "type": "string", "minLength": 1, "description": "Why, for the audit log." })
}

fn schemas() -> Value {
    let money = json!({
        "type": "object",
        "required": ["minor", "currency"],
        "properties": { "minor": { "type": "integer" }, "currency": { "type": "string", "pattern": "^[A-Z]{3}$" } }
    });
    json!({
        "ErrorAnswer": {
            "type": "object",
            "required": ["error", "message"],
            "properties": { "error": { "type": "string" }, "message": { "type": "string" } }
        },
        "Money": money,
        "PlateReadEvent": {
            "type": "object",
            "required": ["camera", "direction", "text", "confidence"],
            "properties": {
                "camera": { "type": "string" },
                "direction": { "enum": ["entry", "exit"] },
                "text": { "type": "string" },
                "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
                "candidates": {
                    "type": "array",
                    "maxItems": crate::api::MAX_CANDIDATES,
                    "items": {
                        "type": "object",
                        "required": ["text", "confidence"],
                        "properties": { "text": { "type": "string" }, "confidence": { "type": "number", "minimum": 0, "maximum": 1 } }
                    }
                },
                "at": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When the car was read; at most 2 minutes ahead of the garage's clock and 24 hours behind it."
                }
            }
        },
        "SignUp": {
            "type": "object",
            "required": ["plates"],
            "properties": {
                "plates": { "type": "array", "items": { "type": "string" }, "minItems": 1 },
                "payment_method": { "type": "string", "description": "Ledger gateway: its card token. Never a card number." },
                "card_setup": { "type": "string", "description": "Stripe gateway: a completed card setup from POST /v1/card-setups." },
                "link": { "type": "string", "description": "The link token shown at the entry, to take over the stay in progress." },
                "email": { "type": "string", "format": "email", "description": "Where receipts and failed-charge notices are mailed, when the garage sends mail." }
            }
        },
        "EmailBody": {
            "type": "object",
            "required": ["email"],
            "properties": { "email": { "type": ["string", "null"], "format": "email" } }
        },
        "PlateBody": { "type": "object", "required": ["plate"], "properties": { "plate": { "type": "string" } } },
        "SignIn": {
            "type": "object",
            "required": ["plate", "recovery_code"],
            "properties": {
                "plate": { "type": "string", "description": "Any plate on the account." },
                "recovery_code": { "type": "string", "description": "As shown at sign-up or the last sign-in; case, spaces and dashes do not matter." }
            }
        },
        "PayBody": {
            "type": "object",
            "properties": { "payment_method": { "type": "string" }, "card_setup": { "type": "string" } }
        },
        "CardSetupAnswer": {
            "type": "object",
            "required": ["card_setup", "client_secret", "publishable_key"],
            "properties": {
                "card_setup": { "type": "string" },
                "client_secret": { "type": "string", "description": "For Stripe.js only; completes the setup." },
                "publishable_key": { "type": "string" }
            }
        },
        "Why": { "type": "object", "required": ["why"], "properties": { "why": why() } },
        "NewCamera": {
            "type": "object",
            "required": ["name", "url", "direction"],
            "properties": {
                "name": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "Also the lane's barrier topic." },
                "url": { "type": "string", "description": "`rtsp://…` or `http://…` (MJPEG or a snapshot); may carry credentials, shown only redacted." },
                "direction": { "enum": ["entry", "exit"] },
                "lane": { "type": "string" },
                "region": { "type": "string", "description": "The plate region the reader ranks spellings for (`us`, `eu`, …); automatic when absent." },
                "every_ms": { "type": "integer", "minimum": 100, "maximum": 60000, "description": "A snapshot URL's poll interval." }
            }
        },
        "LabelBody": {
            "type": "object",
            "description": "Exactly one of spaces, confirm and empty.",
            "properties": {
                "camera": { "type": "string", "description": "The lot's only camera when absent." },
                "spaces": { "type": "object", "additionalProperties": { "enum": ["free", "occupied"] } },
                "confirm": { "const": true },
                "empty": { "const": true }
            }
        },
        "AdapterBody": {
            "type": "object",
            "required": ["version"],
            "properties": { "version": { "type": ["integer", "null"], "minimum": 1 } }
        },
        "RefundBody": {
            "type": "object",
            "required": ["why"],
            "properties": { "amount_minor": { "type": "integer", "minimum": 1 }, "why": why() }
        },
        "PlateCorrectionBody": {
            "type": "object",
            "required": ["plate", "why"],
            "properties": { "plate": { "type": "string" }, "why": why() }
        },
        "ReviewDecisionBody": {
            "type": "object",
            "required": ["resolution", "why"],
            "properties": {
                "session": {
                    "oneOf": [
                        { "type": "object", "required": ["decision"], "properties": { "decision": { "const": "mark_paid" } } },
                        { "type": "object", "required": ["decision"], "properties": { "decision": { "const": "mark_unpaid" } } },
                        { "type": "object", "required": ["decision"], "properties": { "decision": { "const": "close_at_daily_maximum" } } },
                        { "type": "object", "required": ["decision"], "properties": { "decision": { "const": "close_free" } } },
                        {
                            "type": "object",
                            "required": ["decision", "amount_minor"],
                            "properties": { "decision": { "const": "reprice" }, "amount_minor": { "type": "integer", "minimum": 0 } }
                        }
                    ]
                },
                "resolution": { "type": "string", "minLength": 1 },
                "why": why()
            }
        },
        "TariffChangeBody": {
            "type": "object",
            "required": ["tariff", "why"],
            "properties": {
                "tariff": {
                    "type": "object",
                    "description": "A tariff as in the tariff TOML file: currency, utc_offset_minutes, grace_minutes, daily_max_minor, bands, windows, validations.",
                    "required": ["currency", "daily_max_minor", "bands"]
                },
                "why": why()
            }
        },
        "ListChangeBody": {
            "type": "object",
            "required": ["plate", "list", "why"],
            "properties": { "plate": { "type": "string" }, "list": { "enum": ["allow", "deny", "none"] }, "why": why() }
        },
        "PermitBody": {
            "type": "object",
            "required": ["terms", "why"],
            "properties": {
                "terms": {
                    "type": "object",
                    "required": ["id", "plates", "benefit", "valid_from", "valid_to", "max_concurrent"],
                    "properties": {
                        "id": { "type": "string", "pattern": "^[0-9a-f]{32}$" },
                        "plates": { "type": "array", "items": { "type": "string" } },
                        "benefit": { "description": "`\"free\"` or `{\"discount\": {\"percent\": 50}}`-style, as the permit terms define." },
                        "valid_from": { "type": "string", "format": "date-time" },
                        "valid_to": { "type": "string", "format": "date-time" },
                        "max_concurrent": { "type": "integer", "minimum": 1 }
                    }
                },
                "why": why()
            }
        }
    })
}
