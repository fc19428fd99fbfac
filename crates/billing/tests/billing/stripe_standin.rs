//! [`StripeStandin`]: a local HTTP stand-in for Stripe's API, so that `StripeGateway` is tested
//! without the network. It is not Stripe: it replays the documented request and response shapes
//! of the five calls the adapter makes (customers, setup intents, payment intents, refunds), checks
//! the fields they need, records every request it receives, and keeps Stripe's idempotency rules:
//! a key's first answer is saved once the endpoint has run and replayed (with
//! `Idempotent-Replayed: true`) for the same parameters, refused for others.
//!
//! It answers over TLS only, like Stripe, with a certificate for `127.0.0.1` from a CA made afresh
//! for each stand-in: a gateway trusts that CA through [`StripeConfig::extra_roots_pem`], so the
//! adapter's real TLS path is what every test exercises.
//!
//! Tests can make it rate-limit requests (refused before the endpoint runs, so nothing is saved),
//! answer too late (the endpoint ran and saved its answer, but the client gave up: a lost answer),
//! and decline a payment method.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use valet_billing::{StripeConfig, StripeGateway, StripeSecretKey};

pub const SECRET_KEY: &str = "sk_test_standin";

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub form: Vec<(String, String)>,
    pub replayed: bool,
}

impl Received {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Saved {
    path: String,
    form: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
}

#[derive(Debug)]
struct PaymentIntent {
    status: &'static str,
    amount: i64,
    currency: String,
    /// The refunds' ids and amounts, oldest first.
    refunds: Vec<(String, i64)>,
    metadata: Value,
}

impl PaymentIntent {
    fn refunded(&self) -> i64 {
        self.refunds.iter().map(|(_, amount)| amount).sum()
    }
}

#[derive(Debug, Default)]
struct Stripe {
    received: Vec<Received>,
    saved: HashMap<String, Saved>,
    rate_limit_next: u32,
    answer_late_next: Option<Duration>,
    fail_after_running_next: bool,
    declines: HashMap<String, String>,
    next_id: u64,
    setup_intents: HashMap<String, Value>,
    payment_intents: BTreeMap<String, PaymentIntent>,
}

type Shared = Arc<Mutex<Stripe>>;

#[derive(Debug)]
pub struct StripeStandin {
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// The CA that signed the stand-in's certificate, in a PEM file as `VALET_STRIPE_CA_FILE`
    /// names one: trust it to reach the stand-in. Removed with the stand-in.
    pub ca_file: std::path::PathBuf,
    _ca_dir: tempfile::TempDir,
    stripe: Shared,
}

impl StripeStandin {
    /// Serves on a fresh loopback port until the test's runtime ends.
    pub async fn start() -> StripeStandin {
        let stripe = Shared::default();
        let app = Router::new().fallback(handle).with_state(stripe.clone());
        let (acceptor, ca_pem) = test_ca_and_certificate();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", tcp.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(TlsListener { tcp, acceptor }, app).await });
        let ca_dir = tempfile::tempdir().unwrap();
        let ca_file = ca_dir.path().join("stripe-standin-ca.pem");
        std::fs::write(&ca_file, &ca_pem).unwrap();
        StripeStandin { base, ca_file, _ca_dir: ca_dir, stripe }
    }

    /// The stand-in's config for a gateway: its base, its key, and its CA trusted.
    pub fn config(&self) -> StripeConfig {
        let mut config = StripeConfig::new(StripeSecretKey::parse(SECRET_KEY).unwrap());
        config.api_base = self.base.clone();
        config.extra_roots_pem = Some(std::fs::read_to_string(&self.ca_file).unwrap());
        config
    }

    /// A gateway pointed at this stand-in, giving up on a request after `timeout`.
    pub fn gateway_with_timeout(&self, timeout: Duration) -> StripeGateway {
        let mut config = self.config();
        config.timeout = timeout;
        StripeGateway::new(config).unwrap()
    }

    pub fn gateway(&self) -> StripeGateway {
        self.gateway_with_timeout(Duration::from_secs(10))
    }

    pub fn received(&self) -> Vec<Received> {
        self.stripe().received.clone()
    }

    /// Requests received for `path`, in order.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }

    /// PaymentIntents that took money: what a driver's bank statement would show.
    pub fn succeeded_payment_intents(&self) -> Vec<(String, i64)> {
        let stripe = self.stripe();
        stripe
            .payment_intents
            .iter()
            .filter(|(_, pi)| pi.status == "succeeded")
            .map(|(id, pi)| (id.clone(), pi.amount))
            .collect()
    }

    /// Every payment intent and its status (`succeeded`, `requires_payment_method`).
    pub fn payment_intents(&self) -> Vec<(String, &'static str)> {
        self.stripe().payment_intents.iter().map(|(id, pi)| (id.clone(), pi.status)).collect()
    }

    /// The next `count` requests get a 429 before any endpoint runs.
    pub fn rate_limit_next(&self, count: u32) {
        self.stripe().rate_limit_next = count;
    }

    /// The next request runs and its answer is saved, but it is sent only after `delay`.
    pub fn answer_late_next(&self, delay: Duration) {
        self.stripe().answer_late_next = Some(delay);
    }

    /// The next request runs (a payment goes through) and its answer is saved for its key, but
    /// this once Stripe answers 500: the caller cannot know what happened.
    pub fn fail_after_running_next(&self) {
        self.stripe().fail_after_running_next = true;
    }

    /// Stripe forgets every idempotency key, as it does after 24 hours: a resend is a new request.
    pub fn forget_idempotency_keys(&self) {
        self.stripe().saved.clear();
    }

    /// Charges of `payment_method` are declined with `decline_code`.
    pub fn decline(&self, payment_method: &str, decline_code: &str) {
        self.stripe().declines.insert(payment_method.to_owned(), decline_code.to_owned());
    }

    /// An event about payment intent `id` as Stripe would deliver it, its object as the stand-in
    /// holds it now: `payment_intent.*` carry the intent, `charge.refunded` its charge.
    pub fn event(&self, event_id: &str, kind: &str, id: &str) -> Vec<u8> {
        let stripe = self.stripe();
        let intent = stripe.payment_intents.get(id).expect("no such payment intent");
        let object = if kind.starts_with("charge.") {
            json!({"id": format!("ch_{id}"), "object": "charge", "payment_intent": id, "amount": intent.amount,
                   "amount_refunded": intent.refunded(), "currency": intent.currency, "refunded": intent.refunded() > 0})
        } else {
            json!({"id": id, "object": "payment_intent", "amount": intent.amount, "currency": intent.currency,
            "status": intent.status, "metadata": intent.metadata,
            "last_payment_error": if intent.status == "succeeded" { Value::Null } else {
                json!({"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                       "message": "Your card has insufficient funds."})
            }})
        };
        let event = json!({"id": event_id, "object": "event", "type": kind, "created": chrono::Utc::now().timestamp(),
                           "livemode": false, "data": {"object": object}});
        serde_json::to_vec(&event).unwrap()
    }

    /// A person refunds `amount` of payment intent `id` in Stripe's dashboard, not through Valet.
    pub fn refund_in_dashboard(&self, id: &str, amount: i64) -> String {
        let mut stripe = self.stripe();
        stripe.next_id += 1;
        let refund = format!("re_dashboard{}", stripe.next_id);
        stripe.payment_intents.get_mut(id).expect("no such payment intent").refunds.push((refund.clone(), amount));
        refund
    }

    /// Charges of `payment_method` go through again (the driver topped the card up).
    pub fn allow(&self, payment_method: &str) {
        self.stripe().declines.remove(payment_method);
    }

    /// What Stripe.js does in the driver's browser: attach a card to the setup intent.
    pub fn complete_card_setup(&self, setup_id: &str, payment_method: &str) {
        let mut stripe = self.stripe();
        let setup = stripe.setup_intents.get_mut(setup_id).expect("no such setup intent");
        setup["status"] = json!("succeeded");
        setup["payment_method"] = json!(payment_method);
    }

    fn stripe(&self) -> MutexGuard<'_, Stripe> {
        self.stripe.lock().unwrap()
    }
}

/// A CA made for this stand-in alone, and a server certificate it signed for `127.0.0.1`.
fn test_ca_and_certificate() -> (TlsAcceptor, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Valet test CA for the Stripe stand-in");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server =
        CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&server_key, &ca, &ca_key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), ca.pem())
}

/// Loopback TCP with a TLS handshake on each connection; one that fails it (a client that does
/// not trust the CA, or speaks plain HTTP) is dropped and the next accepted.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> (StatusCode, Value) {
    (status, json!({"error": {"type": kind, "message": message}}))
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn handle(
    State(stripe): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut received = Received {
        method: method.clone(),
        path: uri.path().to_owned(),
        idempotency_key: text(header::HeaderName::from_static("idempotency-key")),
        authorization: text(header::AUTHORIZATION),
        content_type: text(header::CONTENT_TYPE),
        form,
        replayed: false,
    };
    let (status, body, delay) = {
        let mut stripe = stripe.lock().unwrap();
        let (mut status, mut body) = answer(&mut stripe, &mut received);
        if std::mem::take(&mut stripe.fail_after_running_next) {
            (status, body) =
                error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "Something went wrong on Stripe's end.");
        }
        stripe.received.push(received.clone());
        (status, body, stripe.answer_late_next.take())
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = (status, Json(body)).into_response();
    if received.replayed {
        response.headers_mut().insert("idempotent-replayed", "true".parse().unwrap());
    }
    response
}

fn answer(stripe: &mut Stripe, received: &mut Received) -> (StatusCode, Value) {
    if received.authorization.as_deref() != Some(&format!("Bearer {SECRET_KEY}")) {
        return error(StatusCode::UNAUTHORIZED, "invalid_request_error", "Invalid API Key provided");
    }
    if stripe.rate_limit_next > 0 {
        stripe.rate_limit_next -= 1;
        return error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "Too many requests hit the API too quickly.");
    }
    let key = received.idempotency_key.clone().filter(|_| received.method == Method::POST);
    if let Some(saved) = key.as_ref().and_then(|key| stripe.saved.get(key)) {
        if saved.path != received.path || saved.form != received.form {
            return error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            );
        }
        received.replayed = true;
        return (saved.status, saved.body.clone());
    }
    let (status, body) = run_endpoint(stripe, &received.method, &received.path, &received.form);
    if let Some(key) = key {
        let saved = Saved { path: received.path.clone(), form: received.form.clone(), status, body: body.clone() };
        stripe.saved.insert(key, saved);
    }
    (status, body)
}

fn run_endpoint(stripe: &mut Stripe, method: &Method, path: &str, form: &[(String, String)]) -> (StatusCode, Value) {
    stripe.next_id += 1;
    let n = stripe.next_id;
    let missing = |name: &str| {
        error(StatusCode::BAD_REQUEST, "invalid_request_error", &format!("Missing required param: {name}."))
    };
    match (method.as_str(), path) {
        ("POST", "/v1/customers") => (
            StatusCode::OK,
            json!({"id": format!("cus_standin{n}"), "object": "customer", "metadata": {"valet_driver": field(form, "metadata[valet_driver]")}}),
        ),
        ("POST", "/v1/setup_intents") => {
            let Some(customer) = field(form, "customer") else { return missing("customer") };
            let id = format!("seti_standin{n}");
            let setup = json!({
                "id": id, "object": "setup_intent", "client_secret": format!("{id}_secret_standin"),
                "customer": customer, "payment_method": null, "status": "requires_payment_method",
                "payment_method_types": [field(form, "payment_method_types[]")], "usage": field(form, "usage"),
            });
            stripe.setup_intents.insert(id, setup.clone());
            (StatusCode::OK, setup)
        }
        ("GET", path) if path.starts_with("/v1/setup_intents/") => {
            match stripe.setup_intents.get(path.trim_start_matches("/v1/setup_intents/")) {
                Some(setup) => (StatusCode::OK, setup.clone()),
                None => error(StatusCode::NOT_FOUND, "invalid_request_error", "No such setupintent"),
            }
        }
        ("POST", "/v1/payment_intents") => payment_intent(stripe, n, form),
        ("POST", "/v1/refunds") => refund(stripe, n, form),
        ("GET", "/v1/refunds") => list_refunds(stripe, form),
        ("GET", "/v1/payment_intents/search") => search_payment_intents(stripe, form),
        _ => error(StatusCode::NOT_FOUND, "invalid_request_error", "Unrecognized request URL"),
    }
}

fn payment_intent(stripe: &mut Stripe, n: u64, form: &[(String, String)]) -> (StatusCode, Value) {
    for name in ["amount", "currency", "customer", "payment_method"] {
        if field(form, name).is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("Missing required param: {name}."),
            );
        }
    }
    let Some(amount) = field(form, "amount").and_then(|a| a.parse::<i64>().ok()).filter(|a| *a > 0) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", "Invalid integer: amount");
    };
    let currency = field(form, "currency").unwrap_or_default().to_owned();
    let payment_method = field(form, "payment_method").unwrap_or_default();
    let id = format!("pi_standin{n}");
    let declined = stripe.declines.get(payment_method).cloned();
    let status = if declined.is_some() { "requires_payment_method" } else { "succeeded" };
    let intent = json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_received": if declined.is_some() { 0 } else { amount },
        "currency": currency, "customer": field(form, "customer"), "payment_method": payment_method,
        "status": status,
        "metadata": {"valet_session": field(form, "metadata[valet_session]"), "valet_charge": field(form, "metadata[valet_charge]")},
    });
    let metadata = intent["metadata"].clone();
    stripe.payment_intents.insert(id, PaymentIntent { status, amount, currency, refunds: Vec::new(), metadata });
    match declined {
        Some(decline_code) => (
            StatusCode::PAYMENT_REQUIRED,
            json!({"error": {
                "type": "card_error", "code": "card_declined", "decline_code": decline_code,
                "message": "Your card was declined.", "payment_intent": intent,
            }}),
        ),
        None => (StatusCode::OK, intent),
    }
}

fn refund(stripe: &mut Stripe, n: u64, form: &[(String, String)]) -> (StatusCode, Value) {
    let Some(id) = field(form, "payment_intent") else {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", "Missing required param: payment_intent.");
    };
    let Some(intent) = stripe.payment_intents.get_mut(id).filter(|pi| pi.status == "succeeded") else {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", "No such payment_intent, or it has no charge");
    };
    let left = intent.amount - intent.refunded();
    let amount = match field(form, "amount") {
        Some(text) => text.parse::<i64>().unwrap_or(-1),
        None => left,
    };
    if amount <= 0 || amount > left {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Refund amount is greater than unrefunded amount",
        );
    }
    let refund = format!("re_standin{n}");
    intent.refunds.push((refund.clone(), amount));
    let body = json!({
        "id": refund, "object": "refund", "amount": amount, "currency": intent.currency,
        "payment_intent": id, "status": "succeeded",
    });
    (StatusCode::OK, body)
}

/// `GET /v1/payment_intents/search?query=metadata['valet_charge']:'KEY'`: the one query the
/// adapter makes, in Stripe's search syntax; anything else is refused as Stripe refuses a query it
/// cannot parse.
fn search_payment_intents(stripe: &Stripe, form: &[(String, String)]) -> (StatusCode, Value) {
    let query = field(form, "query").unwrap_or_default();
    let Some(key) = query.strip_prefix("metadata['valet_charge']:'").and_then(|rest| rest.strip_suffix('\'')) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "The stand-in searches by metadata['valet_charge'] only",
        );
    };
    let data: Vec<Value> = stripe
        .payment_intents
        .iter()
        .filter(|(_, intent)| intent.metadata["valet_charge"] == key)
        .map(|(id, intent)| {
            json!({"id": id, "object": "payment_intent", "amount": intent.amount, "currency": intent.currency,
                   "status": intent.status, "metadata": intent.metadata,
                   "last_payment_error": if intent.status == "succeeded" { Value::Null } else {
                       json!({"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."})
                   }})
        })
        .collect();
    (
        StatusCode::OK,
        json!({"object": "search_result", "url": "/v1/payment_intents/search", "has_more": false, "data": data}),
    )
}

/// `GET /v1/refunds?payment_intent=…`: a list object, newest first, as Stripe pages it.
fn list_refunds(stripe: &Stripe, form: &[(String, String)]) -> (StatusCode, Value) {
    let Some(id) = field(form, "payment_intent") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "The stand-in lists refunds by payment_intent only",
        );
    };
    let Some(intent) = stripe.payment_intents.get(id) else {
        return error(StatusCode::NOT_FOUND, "invalid_request_error", "No such payment_intent");
    };
    let data: Vec<Value> = intent
        .refunds
        .iter()
        .rev()
        .map(|(refund, amount)| json!({"id": refund, "object": "refund", "amount": amount, "currency": intent.currency, "payment_intent": id, "status": "succeeded"}))
        .collect();
    (StatusCode::OK, json!({"object": "list", "url": "/v1/refunds", "has_more": false, "data": data}))
}
