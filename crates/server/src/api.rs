//! The JSON shapes of the public API, shared by the server and `valet send`.

use serde::{Deserialize, Serialize};

/// `POST /v1/classify` → 200.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClassifyAnswer {
    /// `occupied` or `free`.
    pub label: String,
    pub scores: Scores,
    pub image: ImageInfo,
    pub timings_ms: Timings,
    /// The row this classification was recorded as.
    pub record_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scores {
    pub occupied: f32,
    pub free: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageInfo {
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Size after decoding; smaller than `width`×`height` when a huge JPEG was decoded downscaled.
    pub decoded_width: u32,
    pub decoded_height: u32,
}

/// Server-side timings, as the prototype reported them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timings {
    /// From the request's headers to the last byte of its body.
    pub receive: f64,
    pub decode: f64,
    pub model: f64,
    pub total: f64,
}

/// Every error answer: a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorAnswer {
    pub error: String,
    pub message: String,
}

// ---- The garage: plate reads, drivers, operators. ----

/// `POST /v1/plate-reads`: what a camera that reads plates itself reports about one car.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlateReadEvent {
    /// The gate camera, as registered; it also says which way the car is going.
    pub camera: String,
    pub direction: valet_garage::Direction,
    pub text: String,
    /// The reader's confidence in `text`, 0..=1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: f32,
    /// Other spellings the reader considered, at most [`MAX_CANDIDATES`].
    #[serde(default)]
    #[schema(max_items = 32)]
    pub candidates: Vec<valet_garage::Candidate>,
    /// When the car was read; the server's clock when absent.
    #[serde(default)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The plate as the camera saw it (a small JPEG, base64): kept with any review item the read
    /// raises, for the operator to look at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_jpeg: Option<String>,
}

/// How far ahead of the server's clock a camera's `at` may be: clock skew, not a booking.
pub const MAX_CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
/// How old a read may be when it arrives: a camera that buffered its reads through a network
/// outage still reports them, but a read from last week is a replay or a forgery (an entry dated
/// in the future, or far in the past, would price the stay at whatever the sender liked).
pub const MAX_READ_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// The most candidates one read may carry; readers send a handful.
pub const MAX_CANDIDATES: usize = 32;

impl PlateReadEvent {
    /// The read the gate decides on, at `fallback_at` when the camera gave no time. Refuses a
    /// read that names no camera, a confidence outside 0..=1, more than [`MAX_CANDIDATES`]
    /// candidates, and an `at` more than [`MAX_CLOCK_SKEW`] ahead of `now` or more than
    /// [`MAX_READ_AGE`] behind it.
    pub fn into_read(
        self,
        fallback_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<valet_garage::PlateRead, String> {
        if self.camera.trim().is_empty() {
            return Err("`camera` names the gate camera that read the plate".to_owned());
        }
        let unit = |x: f32| (0.0..=1.0).contains(&x);
        if !unit(self.confidence) {
            return Err(format!("`confidence` is between 0 and 1, not {}", self.confidence));
        }
        if self.candidates.len() > MAX_CANDIDATES {
            return Err(format!("at most {MAX_CANDIDATES} `candidates`, not {}", self.candidates.len()));
        }
        if let Some(bad) = self.candidates.iter().find(|c| !unit(c.confidence)) {
            return Err(format!(
                "a candidate's `confidence` is between 0 and 1, not {} ({})",
                bad.confidence, bad.text
            ));
        }
        let at = self.at.unwrap_or(fallback_at);
        if at > now + MAX_CLOCK_SKEW {
            return Err(format!(
                "`at` ({}) is in the future: the camera's clock is ahead of the garage's by more than {} minutes",
                at.to_rfc3339(),
                MAX_CLOCK_SKEW.num_minutes()
            ));
        }
        if at < now - MAX_READ_AGE {
            return Err(format!(
                "`at` ({}) is more than {} hours ago: a read that old is not taken",
                at.to_rfc3339(),
                MAX_READ_AGE.num_hours()
            ));
        }
        Ok(valet_garage::PlateRead {
            text: self.text,
            confidence: self.confidence,
            candidates: self.candidates,
            camera: valet_garage::CameraId(self.camera),
            direction: self.direction,
            at,
        })
    }
}

/// What the gate does with a read. Deliberately not the whole decision: the price reaches the
/// lane only through `display`, which shows it only when the gate is sure whose it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateAnswer {
    /// `lift` or `hold`.
    pub barrier: valet_garage::Barrier,
    /// The decision in one word: `opened`, `refused`, `exempt`, `unreadable` (entry);
    /// `charged`, `nothing_owed`, `pay_by_plate`, `already_closed`, `exempt`, `ambiguous`,
    /// `no_open_session`, `unreadable` (exit).
    pub outcome: String,
    pub session: Option<String>,
    /// For an unregistered car: the token of its sign-up / pay-by-plate link.
    pub link: Option<String>,
    /// The exit screen, at an exit.
    pub display: Option<ExitScreen>,
    /// `requested` (the provider has not answered yet), `succeeded` or `failed`.
    pub charge: Option<String>,
    /// Review items this read raised.
    pub review_items: Vec<i64>,
}

/// What the exit lane's screen shows: always this one shape, whatever the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExitScreen {
    /// `goodbye`, `pay_by_plate` (pay at `link` before leaving) or `please_wait` (an operator
    /// has been called).
    pub message: String,
    /// The pay-by-plate link's token, with `pay_by_plate`.
    pub link: Option<String>,
    /// The fee, only when the gate is sure whose stay it is and the garage shows fees.
    pub fee: Option<valet_garage::Money>,
}

impl From<&valet_garage::ExitDisplay> for ExitScreen {
    fn from(display: &valet_garage::ExitDisplay) -> ExitScreen {
        use valet_garage::ExitMessage;
        let (message, link) = match &display.message {
            ExitMessage::Goodbye => ("goodbye", None),
            ExitMessage::PayByPlate { link } => ("pay_by_plate", Some(link.to_string())),
            ExitMessage::PleaseWait => ("please_wait", None),
        };
        ExitScreen { message: message.to_owned(), link, fee: display.fee }
    }
}

/// The data of the gate's events (`session.opened`, `session.closed`, `gate.decided`): the
/// lane's answer, and on a closed session that owes, the charge billing is to settle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateEvent {
    pub camera: String,
    pub direction: valet_garage::Direction,
    #[serde(flatten)]
    pub answer: GateAnswer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_request: Option<valet_garage::ChargeRequest>,
}

/// The data of billing's `charge.succeeded` / `charge.failed` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeEvent {
    pub session: String,
    pub charge: valet_garage::Charge,
    /// Whether a receipt was written (a charge that succeeded).
    pub receipt: bool,
    /// The review item a declined charge raised.
    pub review_item: Option<i64>,
}

/// `POST /v1/gates/{camera}/frames` (and a bay frame whose chain went on): the frame's event id,
/// what the reader read, the gate's answer at the top level exactly as `/v1/plate-reads` gives it
/// (when the gate ran in this process), and the events the frame caused. A lane's screen is
/// public, so this never carries the plate crop nor a price beyond what `display` allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainAnswer {
    /// The frame's event id (an `Idempotency-Key` header, when the device sent one).
    pub id: String,
    /// The plate as read, when the plate reader ran in this process.
    #[serde(default)]
    pub read: Option<PlateReadEvent>,
    /// The barrier and the exit screen, when the gate ran in this process.
    #[serde(flatten)]
    pub gate: Option<GateAnswer>,
    pub events: Vec<ChainStep>,
    /// The event handed to `K_SINK`, if the chain continues in another function.
    pub forwarded: Option<String>,
}

/// One event the frame caused, by type and id (`GET /v1/sessions/{id}` has the details).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainStep {
    #[serde(rename = "type")]
    pub ty: String,
    pub id: String,
}

/// `POST /v1/drivers`: sign up once, with plates and the payment provider's token for a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignUp {
    #[schema(min_items = 1)]
    pub plates: Vec<String>,
    /// With the ledger gateway: its card token (`pm_card_visa`). Never a card number.
    #[serde(default)]
    pub payment_method: Option<String>,
    /// With Stripe: the id of a card setup from `POST /v1/card-setups` that the driver completed
    /// in Stripe's own card fields; Valet asks Stripe which card was saved.
    #[serde(default)]
    pub card_setup: Option<String>,
    /// The link token shown to an unregistered car at the entry: its stay is charged to this account.
    #[serde(default)]
    pub link: Option<String>,
    /// Where receipts and failed-charge notices go, when the garage sends mail.
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedUpAnswer {
    pub driver: String,
    /// The driver's bearer token for `/v1/me…`, shown this once.
    pub token: String,
    /// Signs the driver in on another device with one of their plates (`POST /v1/drivers/sign-in`),
    /// shown this once: five groups of four letters and digits.
    pub recovery_code: String,
    pub plates: Vec<String>,
    pub session: Option<String>,
}

/// `POST /v1/drivers/sign-in`: a plate on the account and its recovery code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    pub plate: String,
    pub recovery_code: String,
}

/// A signed-in device's token, and the code that replaces the one used (each code signs in once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedInAnswer {
    pub driver: String,
    pub token: String,
    pub recovery_code: String,
    pub plates: Vec<String>,
}

/// `POST /v1/me/recovery-code`: a new code; the old one stops working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecoveryCodeAnswer {
    pub recovery_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DriverView {
    pub driver: String,
    pub plates: Vec<String>,
    pub payment_method: String,
    pub email: Option<String>,
}

/// `PUT /v1/me/email`: the address for receipts and notices; `null` removes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmailBody {
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlateBody {
    pub plate: String,
}

/// A parking session as people see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    /// Absent once retention has erased it.
    pub plate: Option<String>,
    /// `open`, `closed`, `paid`, `unpaid` or `in_review`.
    pub state: String,
    pub entry: chrono::DateTime<chrono::Utc>,
    pub exit: Option<chrono::DateTime<chrono::Utc>>,
    pub price: Option<valet_garage::Price>,
    pub driver: Option<String>,
    pub permit: Option<String>,
}

/// `GET /v1/pay/{link}`: what an unregistered driver owes if they pay now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quote {
    pub session: String,
    pub plate: String,
    pub entry: chrono::DateTime<chrono::Utc>,
    pub state: String,
    pub price: valet_garage::Price,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayBody {
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub card_setup: Option<String>,
}

/// A card setup for Stripe's card fields: the app hands `client_secret` and `publishable_key` to
/// Stripe.js (or a Stripe mobile SDK), then signs up or pays with `card_setup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CardSetupAnswer {
    pub card_setup: String,
    pub client_secret: String,
    pub publishable_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaidAnswer {
    pub session: String,
    pub charge: Option<String>,
    pub receipt: Option<valet_garage::Receipt>,
    /// Minutes the car has to pass the exit barrier.
    pub leave_within_minutes: u32,
}

/// Every operator action says why; the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Why {
    #[schema(min_length = 1, pattern = r"\S")]
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundBody {
    /// Minor units; the whole remaining charge when absent.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub amount_minor: Option<i64>,
    #[schema(min_length = 1, pattern = r"\S")]
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundView {
    pub key: String,
    pub session: String,
    pub charge: String,
    pub amount: valet_garage::Money,
    pub reference: String,
    pub by: String,
    pub reason: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewView {
    pub id: i64,
    pub item: valet_garage::ReviewItem,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `POST /v1/review-items/{id}/plate`: the plate as the operator reads it off the camera's image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlateCorrectionBody {
    pub plate: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub why: String,
}

/// `POST /v1/review-items/{id}/decision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewDecisionBody {
    /// What to do with the item's session, if anything: `mark_paid`, `mark_unpaid`, `reprice`;
    /// for a missed exit (a stay still open), `close_at_daily_maximum` or `close_free`.
    #[serde(default)]
    pub session: Option<SessionDecision>,
    /// One line for the queue: "confirmed AB123CD", "turned away at the entry".
    pub resolution: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum SessionDecision {
    MarkPaid,
    MarkUnpaid,
    /// Price the stay at `amount_minor` instead and charge that.
    Reprice {
        amount_minor: i64,
    },
    /// A missed exit: close the open stay at the tariff's daily maximum and charge it.
    CloseAtDailyMaximum,
    /// A missed exit: close the open stay free.
    CloseFree,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TariffView {
    pub version: i64,
    pub tariff: valet_garage::TariffSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TariffChangeBody {
    pub tariff: valet_garage::TariffSpec,
    #[schema(min_length = 1, pattern = r"\S")]
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListChangeBody {
    pub plate: String,
    /// `allow`, `deny`, or `none` to take the plate off both lists.
    #[schema(pattern = "^(allow|deny|none)$")]
    pub list: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermitBody {
    pub terms: valet_garage::PermitTerms,
    #[schema(min_length = 1, pattern = r"\S")]
    pub why: String,
}
