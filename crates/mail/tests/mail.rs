//! The mailer against a real SMTP server (aiosmtpd on loopback; skipped with the reason when it is
//! not installed) and a real database: what is mailed, once, and what waits while the server is
//! down.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use valet_garage::{
    Driver, DriverId, EmailAddress, Exit, ParkingSession, Payer, PaymentMethodToken, Plate, Receipt, SessionEvent,
    SessionId, Tariff,
};
use valet_mail::testing::SmtpSink;
use valet_mail::{MailConfig, Mailer, Pass};
use valet_store::scratch::ScratchGarage;
use valet_store::{CloseOutcome, GarageStore, PlateKey};

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, hour, minute, 0).unwrap()
}

/// A garage with one driver (mail at `ana@example.com` since 08:00), or `None` after saying why
/// the SMTP server cannot run here.
async fn garage() -> Option<(ScratchGarage, SmtpSink)> {
    let sink = match SmtpSink::start() {
        Ok(sink) => sink,
        Err(why) => {
            eprintln!("skipping: {why}");
            return None;
        }
    };
    let scratch = ScratchGarage::sqlite(PlateKey::new(b"mail-tests-plate-key-32-bytes-ok").unwrap()).await.unwrap();
    let mut driver = Driver::new(DriverId::from_bytes([1; 16]), PaymentMethodToken::parse("pm_card_visa").unwrap());
    driver.add_plate(Plate::parse("AB123CD").unwrap()).unwrap();
    scratch.store.register_driver(&driver, at(7, 0)).await.unwrap();
    let email = EmailAddress::parse("ana@example.com").unwrap();
    scratch.store.set_driver_email(driver.id, Some(&email), at(8, 0)).await.unwrap();
    Some((scratch, sink))
}

fn mailer(store: &GarageStore, sink: &SmtpSink) -> Mailer {
    let config = MailConfig {
        smtp_url: sink.url(),
        from: "Valet Garage <garage@example.com>".into(),
        portal: Some(url::Url::parse("https://park.example.com").unwrap()),
    };
    Mailer::new(store.clone(), &config).unwrap()
}

/// Stay `n` of the driver, 09:00 to 10:30 (€6.00), paid with its receipt or left unpaid.
async fn stay(store: &GarageStore, n: u8, pays: bool) -> SessionId {
    let tariff = Tariff::from_toml(
        "currency = \"EUR\"\ndaily_max_minor = 2400\n[[bands]]\nname = \"hourly\"\nfrom_minute = 0\nevery_minutes = 60\nprice_minor = 300\n",
    )
    .unwrap();
    let session = ParkingSession::open(
        SessionId::from_bytes([n; 16]),
        Plate::parse("AB123CD").unwrap(),
        at(9, 0),
        Payer::Registered(DriverId::from_bytes([1; 16])),
    );
    store.open_session(&session).await.unwrap();
    let mut closed = session.clone();
    let exit = at(10, 30);
    closed.apply(SessionEvent::Exit(Exit { at: exit, price: tariff.price(&session.stay(exit)) })).unwrap();
    let CloseOutcome::Closed { version } = store.close_session(&closed).await.unwrap() else { panic!() };
    let event =
        if pays { SessionEvent::PaymentSucceeded { at: exit } } else { SessionEvent::PaymentFailed { at: exit } };
    closed.apply(event).unwrap();
    store.save_session(&closed, version).await.unwrap().unwrap();
    if pays {
        store.write_receipt(&Receipt::for_session(&closed, None).unwrap(), exit).await.unwrap();
    }
    session.id
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

#[tokio::test]
async fn a_receipt_and_a_refusal_notice_are_mailed_once_each() {
    let Some((garage, sink)) = garage().await else { return };
    let store = &garage.store;
    let paid = stay(store, 1, true).await;
    stay(store, 2, false).await;
    let mailer = mailer(store, &sink);

    let pass = mailer.pass(at(11, 0)).await.unwrap();
    assert_eq!(pass, Pass { owed: 2, sent: 2, ..Pass::default() });
    let messages = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    for message in &messages {
        assert_eq!(header(message, "To"), Some("ana@example.com"), "{message}");
        assert_eq!(header(message, "From"), Some("Valet Garage <garage@example.com>"), "{message}");
        assert!(!message.contains("AB123CD"), "the plate is masked: {message}");
    }
    let receipt =
        messages.iter().find(|m| header(m, "Subject").is_some_and(|s| s.starts_with("Parking receipt"))).unwrap();
    assert_eq!(header(receipt, "Message-ID"), Some(format!("<receipt.{paid}@example.com>").as_str()));
    assert!(receipt.contains("https://park.example.com/me"), "{receipt}");
    let notice =
        messages.iter().find(|m| header(m, "Subject").is_some_and(|s| s.starts_with("Payment needed"))).unwrap();
    assert!(notice.contains("Pay now"), "{notice}");

    // Passes later, and the receipt written again, mail nothing more.
    store.write_receipt(&store.receipt(paid).await.unwrap().unwrap(), at(11, 1)).await.unwrap();
    for minutes in [1, 10, 120] {
        assert_eq!(mailer.pass(at(11, 0) + TimeDelta::minutes(minutes)).await.unwrap(), Pass::default());
    }
    assert_eq!(sink.messages().len(), 2);
}

#[tokio::test]
async fn mail_waits_while_the_smtp_server_is_down_and_leaves_when_it_is_back() {
    let Some((garage, mut sink)) = garage().await else { return };
    let store = &garage.store;
    stay(store, 1, true).await;
    let mailer = mailer(store, &sink);
    sink.stop();

    let now = at(11, 0);
    assert_eq!(mailer.pass(now).await.unwrap(), Pass { owed: 1, deferred: 1, ..Pass::default() });
    let record = &store.mail_records(5).await.unwrap()[0];
    assert!(record.last_error.as_deref().is_some_and(|e| !e.is_empty()) && record.outcome.is_none(), "{record:?}");
    // Not tried again before its backoff (a minute after the first failure) ...
    assert_eq!(mailer.pass(now + TimeDelta::seconds(30)).await.unwrap(), Pass::default());
    sink.resume().unwrap();
    // ... and sent once it is due and the server is back.
    let later = now + TimeDelta::minutes(2);
    assert_eq!(mailer.pass(later).await.unwrap(), Pass { sent: 1, ..Pass::default() });
    assert_eq!(sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    assert_eq!(store.mail_records(5).await.unwrap()[0].attempts, 2);
}

#[tokio::test]
async fn a_notice_for_a_stay_paid_meanwhile_or_a_removed_address_is_skipped() {
    let Some((garage, sink)) = garage().await else { return };
    let store = &garage.store;
    let unpaid = stay(store, 1, false).await;
    stay(store, 2, true).await;
    let mailer = mailer(store, &sink);
    store.owe_mail(at(0, 0), at(10, 45)).await.unwrap();

    // The driver paid from their account before the notice left.
    let record = store.session(unpaid).await.unwrap().unwrap();
    let mut session = record.to_session().unwrap().unwrap();
    session.apply(SessionEvent::PaymentSucceeded { at: at(10, 50) }).unwrap();
    store.save_session(&session, record.version).await.unwrap().unwrap();
    // ... and removed the address before the receipt left.
    store.set_driver_email(DriverId::from_bytes([1; 16]), None, at(10, 55)).await.unwrap();

    let pass = mailer.pass(at(11, 0)).await.unwrap();
    assert_eq!((pass.sent, pass.skipped), (0, 2), "{pass:?}");
    assert!(sink.messages().is_empty());
}
