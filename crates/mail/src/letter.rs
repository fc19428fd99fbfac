//! The words of each mail: a paid stay's receipt, and the notice that the bank refused a stay's
//! charge, with where to pay it. Plain text, rendered when the mail is sent from what the garage
//! recorded, so a late mail says what is true when it leaves.

use chrono::{DateTime, Utc};
use valet_garage::{Exit, Receipt};

/// A mail's subject and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub subject: String,
    pub body: String,
}

fn day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Where a signed-up driver sees their stays and pays an unpaid one: the portal's account page.
pub fn account_page(portal: &url::Url) -> String {
    format!("{}/me", portal.as_str().trim_end_matches('/'))
}

pub fn receipt(receipt: &Receipt, portal: Option<&url::Url>) -> Letter {
    let mut body = format!("Thank you for parking with us. Your receipt:\n\n{receipt}\n");
    if let Some(portal) = portal {
        body.push_str(&format!("Your stays and receipts: {}\n", account_page(portal)));
    }
    Letter { subject: format!("Parking receipt: {} on {}", receipt.total, day(receipt.exit)), body }
}

/// The notice for a stay whose charge the bank refused (`reason`, as the payment provider gave it).
pub fn charge_failed(
    masked_plate: &str,
    entry: DateTime<Utc>,
    exit: &Exit,
    reason: Option<&str>,
    portal: Option<&url::Url>,
) -> Letter {
    let total = exit.price.total;
    let mut body = format!(
        "We could not charge your card {total} for your stay:\n\n\
         Plate {masked_plate}\nIn  {}\nOut {}\n\n\
         Your bank said: {}.\n\n",
        entry.format("%Y-%m-%d %H:%M UTC"),
        exit.at.format("%Y-%m-%d %H:%M UTC"),
        reason.unwrap_or("no reason given"),
    );
    match portal {
        Some(portal) => body.push_str(&format!(
            "To pay it, sign in with your plate and recovery code at\n{}\nand choose \"Pay now\": it charges the card on your account again.\n",
            account_page(portal)
        )),
        None => body.push_str("To pay it, open \"My account\" in the garage's driver portal and choose \"Pay now\".\n"),
    }
    body.push_str("Nothing more is owed for this stay once it is paid.\n");
    Letter { subject: format!("Payment needed: {total} for parking on {}", day(exit.at)), body }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use valet_garage::{DriverId, Exit, ParkingSession, Payer, Plate, SessionEvent, SessionId, Tariff};

    use super::*;

    fn stay() -> (ParkingSession, Exit) {
        let tariff = Tariff::from_toml(
            "currency = \"EUR\"\ndaily_max_minor = 2400\n[[bands]]\nname = \"hourly\"\nfrom_minute = 0\nevery_minutes = 60\nprice_minor = 300\n",
        )
        .unwrap();
        let entry = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
        let mut session = ParkingSession::open(
            SessionId::from_bytes([1; 16]),
            Plate::parse("AB123CD").unwrap(),
            entry,
            Payer::Registered(DriverId::from_bytes([2; 16])),
        );
        let at = entry + chrono::TimeDelta::minutes(90);
        let exit = Exit { at, price: tariff.price(&session.stay(at)) };
        session.apply(SessionEvent::Exit(exit.clone())).unwrap();
        (session, exit)
    }

    #[test]
    fn a_receipt_mail_carries_the_receipt_with_the_plate_masked_and_the_account_link() {
        let (mut session, exit) = stay();
        session.apply(SessionEvent::PaymentSucceeded { at: exit.at }).unwrap();
        let receipt = Receipt::for_session(&session, None).unwrap();
        let portal = url::Url::parse("https://park.example.com/").unwrap();
        let letter = super::receipt(&receipt, Some(&portal));
        assert_eq!(letter.subject, "Parking receipt: €6.00 on 2026-12-03");
        assert!(letter.body.contains(&receipt.to_string()), "{}", letter.body);
        assert!(letter.body.contains("https://park.example.com/me\n"), "{}", letter.body);
        assert!(!letter.body.contains("AB123CD"), "the plate is masked: {}", letter.body);
    }

    #[test]
    fn a_refused_charge_says_why_how_much_and_where_to_pay() {
        let (session, exit) = stay();
        let portal = url::Url::parse("https://park.example.com/valet").unwrap();
        let letter =
            charge_failed(&session.plate.masked(), session.entry, &exit, Some("insufficient_funds"), Some(&portal));
        assert_eq!(letter.subject, "Payment needed: €6.00 for parking on 2026-12-03");
        for needle in [
            "€6.00",
            "In  2026-12-03 09:00 UTC",
            "Out 2026-12-03 10:30 UTC",
            "insufficient_funds",
            "https://park.example.com/valet/me\n",
            "Pay now",
        ] {
            assert!(letter.body.contains(needle), "{needle} in {}", letter.body);
        }
        let without = charge_failed(&session.plate.masked(), session.entry, &exit, None, None);
        assert!(without.body.contains("no reason given") && without.body.contains("My account"), "{}", without.body);
    }
}
