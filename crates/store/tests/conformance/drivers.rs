//! Driver sign-in (recovery codes, token revocation) and the pay-by-plate lookup and its tries.

use chrono::TimeDelta;
use valet_garage::RecoveryCode;

use super::{TestGarage, at, conformance, driver, plate, unregistered_session};

conformance!(
    a_recovery_code_signs_in_once_with_any_plate_of_its_account_and_is_kept_only_hashed,
    a_revoked_token_opens_nothing_and_a_recovery_sign_in_keeps_only_the_new_one,
    pay_by_plate_sees_the_unpaid_stays_of_an_hour_and_counts_tries_per_plate,
);

fn code(n: u8) -> RecoveryCode {
    RecoveryCode::from_bytes([n; 16])
}

async fn a_recovery_code_signs_in_once_with_any_plate_of_its_account_and_is_kept_only_hashed(garage: TestGarage) {
    let store = &garage.store;
    let alice = driver(1, &["PHONE1", "CD45"]);
    store.register_driver_with_recovery(&alice, &code(1), at(1, 9, 0)).await.unwrap();
    store.register_driver_with_recovery(&driver(2, &["XY99"]), &code(2), at(1, 9, 0)).await.unwrap();
    assert_eq!(garage.raw_rows_containing("drivers", code(1).canonical()).await, 0, "only the hash is stored");

    // Another account's plate, an unknown plate, or another account's code: nothing, and no change.
    for (typed, with) in [("XY99", code(1)), ("ZZ11", code(1)), ("PHONE1", code(2)), ("PHONE1", code(3))] {
        assert_eq!(store.redeem_recovery_code(&plate(typed), &with, &code(9)).await.unwrap(), None, "{typed}");
    }
    // The account's plate, in a confusable spelling too, and its code: once.
    assert_eq!(store.redeem_recovery_code(&plate("PH0NE1"), &code(1), &code(4)).await.unwrap(), Some(alice.id));
    assert_eq!(store.redeem_recovery_code(&plate("CD45"), &code(1), &code(5)).await.unwrap(), None, "spent");
    assert_eq!(store.redeem_recovery_code(&plate("CD45"), &code(4), &code(5)).await.unwrap(), Some(alice.id));
    // A replaced code stops working; the replacement works.
    assert!(store.replace_recovery_code(alice.id, &code(6)).await.unwrap());
    assert_eq!(store.redeem_recovery_code(&plate("CD45"), &code(5), &code(7)).await.unwrap(), None);
    assert_eq!(store.redeem_recovery_code(&plate("CD45"), &code(6), &code(7)).await.unwrap(), Some(alice.id));
    // Two sign-ins racing with one code: one wins.
    let (cd45, phone1, seven, eight, ten) = (plate("CD45"), plate("PHONE1"), code(7), code(8), code(10));
    let (a, b) = tokio::join!(
        store.redeem_recovery_code(&cd45, &seven, &eight),
        store.redeem_recovery_code(&phone1, &seven, &ten),
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().flatten().count(), 1);
    // Bob's account was never touched.
    assert_eq!(
        store.redeem_recovery_code(&plate("XY99"), &code(2), &code(11)).await.unwrap(),
        Some(super::driver_id(2))
    );
}

async fn a_revoked_token_opens_nothing_and_a_recovery_sign_in_keeps_only_the_new_one(garage: TestGarage) {
    let store = &garage.store;
    let alice = driver(1, &["AB0123"]);
    store.register_driver_with_recovery(&alice, &code(1), at(1, 9, 0)).await.unwrap();
    let old_phone = store.grant_driver_token(alice.id, at(1, 9, 0)).await.unwrap();
    let laptop = store.grant_driver_token(alice.id, at(1, 9, 1)).await.unwrap();
    assert!(store.revoke_driver_token(laptop.expose()).await.unwrap());
    assert!(!store.revoke_driver_token(laptop.expose()).await.unwrap(), "already revoked");
    assert_eq!(store.driver_by_token(laptop.expose()).await.unwrap(), None);
    assert_eq!(store.driver_by_token(old_phone.expose()).await.unwrap().map(|d| d.id), Some(alice.id));

    let new_phone = store.grant_driver_token(alice.id, at(2, 9, 0)).await.unwrap();
    assert_eq!(store.revoke_other_driver_tokens(alice.id, &new_phone).await.unwrap(), 1);
    assert_eq!(store.driver_by_token(old_phone.expose()).await.unwrap(), None);
    assert_eq!(store.driver_by_token(new_phone.expose()).await.unwrap().map(|d| d.id), Some(alice.id));
}

async fn pay_by_plate_sees_the_unpaid_stays_of_an_hour_and_counts_tries_per_plate(garage: TestGarage) {
    let store = &garage.store;
    for (n, raw, entry) in [(1, "AB0123", at(2, 14, 5)), (2, "CD45", at(2, 15, 30)), (3, "EF67", at(2, 13, 0))] {
        store.open_session(&unregistered_session(n, raw, entry)).await.unwrap();
    }
    let stays = store.unpaid_stays_entered_between(at(2, 14, 0), at(2, 15, 30)).await.unwrap();
    let plates: Vec<_> = stays.iter().filter_map(|s| s.plate.as_ref().map(|p| p.display().to_owned())).collect();
    assert_eq!(plates, ["AB0123"], "from inclusive, to exclusive");

    let window = TimeDelta::hours(24);
    let now = at(3, 12, 0);
    assert_eq!(store.record_pay_try(&plate("AB0123"), "try-a", now, now - window).await.unwrap(), 1);
    assert_eq!(
        store.record_pay_try(&plate("ABO123"), "try-b", now, now - window).await.unwrap(),
        2,
        "per matching key"
    );
    assert_eq!(store.record_pay_try(&plate("CD45"), "try-c", now, now - window).await.unwrap(), 1, "per plate");
    store.forget_pay_try("try-b").await.unwrap();
    assert_eq!(store.record_pay_try(&plate("AB0123"), "try-d", now, now - window).await.unwrap(), 2);
    // A day later the old tries are gone, rows and all.
    let later = now + window + TimeDelta::minutes(1);
    assert_eq!(store.record_pay_try(&plate("AB0123"), "try-e", later, later - window).await.unwrap(), 1);
    assert_eq!(garage.raw_rows_containing("pay_by_plate_tries", "try-a").await, 0);
    assert_eq!(garage.raw_rows_containing("pay_by_plate_tries", "AB0123").await, 0, "only the digest is stored");
}
