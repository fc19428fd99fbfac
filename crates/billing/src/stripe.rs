//! [`StripeGateway`]: the [`PaymentGateway`] on Stripe's REST API, form-encoded as Stripe documents
//! it: `POST /v1/customers`, `POST /v1/setup_intents` (+ `GET` once the driver has entered a card in
//! Stripe's own form), off-session `POST /v1/payment_intents` with an `Idempotency-Key`, and
//! `POST /v1/refunds`.
//!
//! The secret key travels only in the `Authorization` header (which reqwest marks sensitive) and
//! is never logged or printed; card data never reaches this process at all.
//!
//! Stripe is reached over HTTPS with rustls and the webpki root store (no system OpenSSL). Plain
//! `http` is accepted only to a loopback host (a local stand-in): anywhere else it would send the
//! secret key in clear, so [`StripeGateway::new`] refuses it up front.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use valet_garage::{ChargeRequest, Currency, DriverId, Money, PaymentMethodToken};

use crate::gateway::{
    CardSetup, CustomerRef, GatewayCharge, GatewayError, GatewayRefund, PaymentGateway, ProviderOutcome,
    ProviderRefund, RefundRequest, check_chargeable,
};

/// A Stripe secret (`sk_…`) or restricted (`rk_…`) key. `Debug` shows only its kind.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeSecretKey(String);

impl StripeSecretKey {
    pub fn parse(text: &str) -> Result<StripeSecretKey, StripeSetupError> {
        let text = text.trim();
        let looks_right = (text.starts_with("sk_") || text.starts_with("rk_"))
            && text.len() > 3
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if looks_right { Ok(StripeSecretKey(text.to_owned())) } else { Err(StripeSetupError::SecretKey) }
    }
}

impl fmt::Debug for StripeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StripeSecretKey({}…)", &self.0[..3])
    }
}

/// A Stripe publishable key (`pk_…`): public by design, Stripe.js uses it in the driver's browser
/// to show Stripe's own card fields. Checked so that a secret key pasted here by mistake is
/// refused instead of being sent to every browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePublishableKey(String);

impl StripePublishableKey {
    pub fn parse(text: &str) -> Result<StripePublishableKey, StripeSetupError> {
        let text = text.trim();
        let looks_right =
            text.starts_with("pk_") && text.len() > 3 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if looks_right { Ok(StripePublishableKey(text.to_owned())) } else { Err(StripeSetupError::PublishableKey) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com` in production; a stand-in's `http://127.0.0.1:PORT` in tests.
    pub api_base: String,
    pub secret_key: StripeSecretKey,
    /// How long one request may take before it counts as [`GatewayError::Transient`].
    pub timeout: Duration,
    /// CA certificates (PEM) trusted besides the webpki roots: an outbound proxy's that inspects
    /// TLS, or a test's own CA.
    pub extra_roots_pem: Option<String>,
}

impl StripeConfig {
    pub const API_BASE: &'static str = "https://api.stripe.com";

    pub fn new(secret_key: StripeSecretKey) -> StripeConfig {
        StripeConfig {
            api_base: StripeConfig::API_BASE.to_owned(),
            secret_key,
            timeout: Duration::from_secs(30),
            extra_roots_pem: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StripeSetupError {
    /// The key is not echoed: this message may be logged.
    #[error("a Stripe secret key starts with sk_ or rk_ and holds only letters, digits and underscores")]
    SecretKey,
    /// Not echoed either: a secret key may have been pasted here by mistake.
    #[error("a Stripe publishable key starts with pk_ and holds only letters, digits and underscores")]
    PublishableKey,
    #[error("the Stripe API base {0:?} is not an http(s) URL")]
    ApiBase(String),
    #[error(
        "the Stripe API base {0} is plain http to a host that is not loopback: the secret key would travel in clear"
    )]
    Cleartext(String),
    #[error("the extra CA certificates are not PEM certificates: {0}")]
    ExtraRoots(#[source] reqwest::Error),
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

#[derive(Debug, Clone)]
pub struct StripeGateway {
    client: reqwest::Client,
    base: Url,
    secret_key: StripeSecretKey,
}

impl StripeGateway {
    pub fn new(config: StripeConfig) -> Result<StripeGateway, StripeSetupError> {
        let base = Url::parse(&config.api_base).map_err(|_| StripeSetupError::ApiBase(config.api_base.clone()))?;
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            "http" => return Err(StripeSetupError::Cleartext(config.api_base)),
            _ => return Err(StripeSetupError::ApiBase(config.api_base)),
        }
        let mut client = reqwest::Client::builder()
            .timeout(config.timeout)
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            // An https base never follows a redirect down to http with the key in its header.
            .https_only(base.scheme() == "https");
        if let Some(pem) = &config.extra_roots_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(StripeSetupError::ExtraRoots)?;
            for root in roots {
                client = client.add_root_certificate(root);
            }
        }
        let client = client.build().map_err(StripeSetupError::Client)?;
        Ok(StripeGateway { client, base, secret_key: config.secret_key })
    }

    /// One Stripe call: `form` is the query of a `GET` and the body of anything else. Only the path, the idempotency key and the status are logged: bodies can
    /// hold a client secret, and the headers hold the secret key.
    async fn call(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        form: &[(&str, String)],
    ) -> Result<Value, GatewayError> {
        let url = self.base.join(path).map_err(|_| rejected(format!("bad Stripe path {path}")))?;
        let mut request = self.client.request(method.clone(), url).bearer_auth(&self.secret_key.0);
        if method == Method::GET {
            request = request.query(form);
        } else if !form.is_empty() {
            request = request.form(form);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(|error| {
            tracing::warn!(%method, path, idempotency_key, %error, "Stripe could not be reached");
            transient(format!("Stripe could not be reached: {}", error.without_url()))
        })?;
        let status = response.status();
        tracing::info!(%method, path, idempotency_key, status = status.as_u16(), "Stripe answered");
        // A body that does not arrive or does not parse leaves the outcome unknown, so it is
        // transient: only a readable answer may be recorded as final.
        let body: Value = response.json().await.map_err(|error| {
            transient(format!("Stripe's answer ({status}) was unreadable: {}", error.without_url()))
        })?;
        if status.is_success() { Ok(body) } else { Err(stripe_error(status, &body)) }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => {
            host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// Sorts Stripe's error answers by what may be done next: server trouble, rate limits and
/// concurrent use of one idempotency key are worth retrying with the same key; a `card_error` is
/// the driver's bank saying no; anything else is a request that cannot succeed as sent.
fn stripe_error(status: StatusCode, body: &Value) -> GatewayError {
    let error = &body["error"];
    let kind = error["type"].as_str().unwrap_or("unknown");
    let message = error["message"].as_str().unwrap_or("no message").to_owned();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::CONFLICT {
        return transient(format!("{status} {kind}: {message}"));
    }
    if kind == "card_error" {
        let code = error["decline_code"].as_str().or(error["code"].as_str()).map(str::to_owned);
        return GatewayError::Declined { code, message };
    }
    rejected(format!("{status} {kind}: {message}"))
}

fn transient(message: String) -> GatewayError {
    GatewayError::Transient { message }
}

fn rejected(message: String) -> GatewayError {
    GatewayError::Rejected { message }
}

fn text<'a>(body: &'a Value, field: &str) -> Result<&'a str, GatewayError> {
    body[field].as_str().ok_or_else(|| transient(format!("Stripe's answer has no {field}")))
}

fn money(body: &Value) -> Result<Money, GatewayError> {
    let minor = body["amount"].as_i64().ok_or_else(|| transient("Stripe's answer has no amount".into()))?;
    let currency = Currency::parse(text(body, "currency")?).map_err(|e| transient(e.to_string()))?;
    Ok(Money::new(minor, currency))
}

/// Stripe ids are letters, digits and underscores; anything else is refused before it becomes
/// part of a URL path.
fn stripe_id(id: &str) -> Result<&str, GatewayError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(rejected(format!("{id:?} is not a Stripe id")))
    }
}

/// The token this adapter hands out is `cus_…/pm_…`: an off-session PaymentIntent must name the
/// customer the card is attached to, and carrying it in the token saves a lookup per exit.
fn token_parts(method: &PaymentMethodToken) -> Result<(&str, &str), GatewayError> {
    let (customer, payment_method) = method
        .as_str()
        .split_once('/')
        .ok_or_else(|| rejected(format!("{} is not a Stripe payment method token", method.as_str())))?;
    Ok((stripe_id(customer)?, stripe_id(payment_method)?))
}

impl PaymentGateway for StripeGateway {
    /// Keyed by driver, so a retried sign-up finds the customer the first attempt created.
    async fn create_customer(&self, driver: DriverId) -> Result<CustomerRef, GatewayError> {
        let key = format!("valet-customer-{driver}");
        let form = [("metadata[valet_driver]", driver.to_string())];
        let body = self.call(Method::POST, "/v1/customers", Some(&key), &form).await?;
        Ok(CustomerRef(text(&body, "id")?.to_owned()))
    }

    async fn start_card_setup(&self, customer: &CustomerRef) -> Result<CardSetup, GatewayError> {
        let form = [
            ("customer", stripe_id(&customer.0)?.to_owned()),
            ("payment_method_types[]", "card".to_owned()),
            ("usage", "off_session".to_owned()),
        ];
        let body = self.call(Method::POST, "/v1/setup_intents", None, &form).await?;
        Ok(CardSetup {
            id: text(&body, "id")?.to_owned(),
            customer: customer.clone(),
            client_secret: body["client_secret"].as_str().map(str::to_owned),
        })
    }

    async fn saved_payment_method(&self, setup_id: &str) -> Result<PaymentMethodToken, GatewayError> {
        let path = format!("/v1/setup_intents/{}", stripe_id(setup_id)?);
        let body = self.call(Method::GET, &path, None, &[]).await?;
        let status = text(&body, "status")?;
        if status != "succeeded" {
            let message = format!("card setup {setup_id} is {status}: the driver has not saved a card yet");
            return Err(GatewayError::Declined { code: Some(status.to_owned()), message });
        }
        let token = format!("{}/{}", text(&body, "customer")?, text(&body, "payment_method")?);
        PaymentMethodToken::parse(&token).map_err(|error| rejected(error.to_string()))
    }

    async fn charge(
        &self,
        request: &ChargeRequest,
        method: &PaymentMethodToken,
    ) -> Result<GatewayCharge, GatewayError> {
        check_chargeable(request)?;
        let (customer, payment_method) = token_parts(method)?;
        let form = [
            // Stripe counts in the currency's smallest unit, as `Money` does.
            ("amount", request.amount.minor.to_string()),
            ("currency", request.amount.currency.code().to_ascii_lowercase()),
            ("customer", customer.to_owned()),
            ("payment_method", payment_method.to_owned()),
            ("off_session", "true".to_owned()),
            ("confirm", "true".to_owned()),
            ("metadata[valet_session]", request.session.to_string()),
            // What a webhook about this payment names, to find the charge it settles.
            ("metadata[valet_charge]", request.idempotency_key.to_string()),
        ];
        let key = request.idempotency_key.as_str();
        let body = self.call(Method::POST, "/v1/payment_intents", Some(key), &form).await?;
        let reference = text(&body, "id")?.to_owned();
        match text(&body, "status")? {
            "succeeded" => {
                Ok(GatewayCharge { idempotency_key: request.idempotency_key.clone(), reference, amount: money(&body)? })
            }
            // Off-session there is nobody to authenticate or pick another card: a person must.
            status => Err(GatewayError::Declined {
                code: Some(status.to_owned()),
                message: format!("payment {reference} is {status}, not succeeded"),
            }),
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<GatewayRefund, GatewayError> {
        let mut form = vec![("payment_intent", stripe_id(&request.charge_reference)?.to_owned())];
        if let Some(amount) = request.amount {
            form.push(("amount", amount.minor.to_string()));
        }
        let body = self.call(Method::POST, "/v1/refunds", Some(&request.key.0), &form).await?;
        let reference = text(&body, "id")?.to_owned();
        match text(&body, "status")? {
            status @ ("failed" | "canceled") => Err(GatewayError::Declined {
                code: Some(status.to_owned()),
                message: format!("refund {reference} {status}"),
            }),
            _ => Ok(GatewayRefund {
                key: request.key.clone(),
                reference,
                charge_reference: request.charge_reference.clone(),
                amount: money(&body)?,
            }),
        }
    }

    /// Stripe's search finds a payment by its metadata. It is eventually consistent (a payment of
    /// the last minute may be missing), which is safe here: within 24 hours a resend with the same
    /// key is answered with the first result anyway.
    async fn look_up(&self, request: &ChargeRequest) -> Result<Option<ProviderOutcome>, GatewayError> {
        // Keys are letters, digits and hyphens, so the query needs no escaping; checked anyway.
        let key = request.idempotency_key.as_str();
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(rejected(format!("{key:?} cannot be searched for")));
        }
        let query = [("query", format!("metadata['valet_charge']:'{key}'")), ("limit", "10".to_owned())];
        let body = self.call(Method::GET, "/v1/payment_intents/search", None, &query).await?;
        let found = body["data"].as_array().ok_or_else(|| transient("Stripe's search result has no data".into()))?;
        // One key makes one payment; should there be more, one that took the money decides.
        let paid = found.iter().find(|intent| intent["status"] == "succeeded");
        let Some(intent) = paid.or(found.first()) else { return Ok(None) };
        let reference = text(intent, "id")?.to_owned();
        Ok(Some(match text(intent, "status")? {
            "succeeded" => ProviderOutcome::Paid(GatewayCharge {
                idempotency_key: request.idempotency_key.clone(),
                reference,
                amount: money(intent)?,
            }),
            "processing" => ProviderOutcome::Processing,
            status => {
                let error = &intent["last_payment_error"];
                let code = error["decline_code"].as_str().or(error["code"].as_str()).unwrap_or(status);
                let message =
                    error["message"].as_str().map_or_else(|| format!("payment {reference} is {status}"), str::to_owned);
                ProviderOutcome::Refused(GatewayError::Declined { code: Some(code.to_owned()), message })
            }
        }))
    }

    async fn refunds_of(&self, charge_reference: &str) -> Result<Vec<ProviderRefund>, GatewayError> {
        // A stay's payment is refunded a handful of times at most: one page of 100 is all of them.
        let query = [("payment_intent", stripe_id(charge_reference)?.to_owned()), ("limit", "100".to_owned())];
        let body = self.call(Method::GET, "/v1/refunds", None, &query).await?;
        let listed = body["data"].as_array().ok_or_else(|| transient("Stripe's refund list has no data".into()))?;
        let mut refunds = Vec::new();
        // Stripe lists newest first.
        for refund in listed.iter().rev() {
            if matches!(refund["status"].as_str(), Some("failed" | "canceled")) {
                continue;
            }
            refunds.push(ProviderRefund { reference: text(refund, "id")?.to_owned(), amount: money(refund)? });
        }
        Ok(refunds)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secret_key_is_checked_and_never_shown() {
        let key = StripeSecretKey::parse("sk_test_51Habc").unwrap();
        assert_eq!(format!("{key:?}"), "StripeSecretKey(sk_…)");
        for bad in ["", "pk_test_1", "sk_", "sk_test 1"] {
            assert!(StripeSecretKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_publishable_key_must_look_like_one_and_a_secret_key_is_refused_without_being_echoed() {
        assert_eq!(StripePublishableKey::parse(" pk_test_abc123 ").unwrap().as_str(), "pk_test_abc123");
        for wrong in ["sk_test_abc123", "pk_", "pk_test abc", "pk_test_\"><script>"] {
            let error = StripePublishableKey::parse(wrong).unwrap_err().to_string();
            assert!(!error.contains("abc"), "{error}");
        }
    }

    /// Each row: an API base, and whether the gateway accepts it.
    #[test]
    fn https_is_the_rule_and_plain_http_only_reaches_loopback() {
        let table = [
            ("https://api.stripe.com", true),
            ("https://10.0.0.7:8443", true),
            ("http://127.0.0.1:4242", true),
            ("http://[::1]:4242", true),
            ("http://localhost:4242", true),
            ("http://api.stripe.com", false),
            ("http://10.0.0.7:4242", false),
            ("http://127.0.0.1.example.com", false),
            ("ftp://127.0.0.1", false),
            ("not a url", false),
        ];
        for (base, accepted) in table {
            let mut config = StripeConfig::new(StripeSecretKey::parse("sk_test_1").unwrap());
            config.api_base = base.to_owned();
            let result = StripeGateway::new(config);
            assert_eq!(result.is_ok(), accepted, "{base}: {result:?}");
        }
    }

    #[test]
    fn extra_roots_that_are_not_pem_certificates_are_refused() {
        let mut config = StripeConfig::new(StripeSecretKey::parse("sk_test_1").unwrap());
        config.extra_roots_pem = Some("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into());
        let result = StripeGateway::new(config);
        assert!(matches!(result, Err(StripeSetupError::ExtraRoots(_))), "{result:?}");
    }

    /// Each row: the HTTP status and Stripe's error body, and whether it is declined, rejected or
    /// transient.
    #[test]
    fn stripe_errors_are_sorted_by_what_may_be_done_next() {
        let card = json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}});
        let auth = json!({"error": {"type": "card_error", "code": "authentication_required", "message": "This payment requires authentication."}});
        let invalid = json!({"error": {"type": "invalid_request_error", "message": "No such customer"}});
        let idempotency = json!({"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters"}});
        let api = json!({"error": {"type": "api_error", "message": "Something went wrong"}});
        let table = [
            (402, &card, "declined (insufficient_funds)"),
            (402, &auth, "declined (authentication_required)"),
            (400, &invalid, "refused"),
            (400, &idempotency, "refused"),
            (401, &invalid, "refused"),
            (429, &api, "retry"),
            (409, &idempotency, "retry"),
            (500, &api, "retry"),
            (503, &json!("not json we know"), "retry"),
        ];
        for (status, body, expected) in table {
            let error = stripe_error(StatusCode::from_u16(status).unwrap(), body);
            assert!(error.to_string().contains(expected), "{status}: {error}");
        }
    }

    #[test]
    fn a_token_names_the_customer_and_the_payment_method() {
        let token = PaymentMethodToken::parse("cus_A1/pm_B2").unwrap();
        assert_eq!(token_parts(&token), Ok(("cus_A1", "pm_B2")));
        for bad in ["pm_B2", "cus_A1/pm_../x", "cus_A1/"] {
            assert!(token_parts(&PaymentMethodToken::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }
}
