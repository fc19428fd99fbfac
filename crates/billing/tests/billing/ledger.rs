//! The ledger gateway: receivables per driver, one entry per idempotency key, refunds that never
//! exceed the charge, and statements with a balance.

use valet_billing::{GatewayError, LedgerGateway, PaymentGateway, RefundKey, RefundRequest, StatementLine};
use valet_garage::{Currency, Money};

use crate::helpers::{driver, exit_charge, ledger_account, usd};

#[tokio::test]
async fn a_charge_becomes_a_receivable_on_the_drivers_statement() {
    let ledger = LedgerGateway::new();
    let method = ledger_account(&ledger, driver(1)).await;
    let request = exit_charge(10, 1, 600);

    let charge = ledger.charge(&request, &method).await.unwrap();

    assert_eq!(charge.amount, usd(600));
    assert_eq!(charge.idempotency_key, request.idempotency_key);
    let statement = ledger.statement(driver(1));
    assert_eq!(
        statement.lines,
        [StatementLine::Charge {
            session: request.session,
            idempotency_key: request.idempotency_key,
            reference: charge.reference,
            amount: usd(600),
        }]
    );
    assert_eq!(statement.balance(Currency::USD), usd(600));
    assert!(ledger.statement(driver(2)).lines.is_empty());
}

#[tokio::test]
async fn the_same_key_twice_returns_the_first_charge_and_records_one_entry() {
    let ledger = LedgerGateway::new();
    let method = ledger_account(&ledger, driver(1)).await;
    let request = exit_charge(10, 1, 600);

    let first = ledger.charge(&request, &method).await.unwrap();
    let again = ledger.charge(&request, &method).await.unwrap();

    assert_eq!(first, again);
    assert_eq!(ledger.charge_count(), 1);
    assert_eq!(ledger.statement(driver(1)).balance(Currency::USD), usd(600));
}

#[tokio::test]
async fn a_key_reused_for_another_amount_is_refused_and_records_nothing() {
    let ledger = LedgerGateway::new();
    let method = ledger_account(&ledger, driver(1)).await;
    ledger.charge(&exit_charge(10, 1, 600), &method).await.unwrap();

    let result = ledger.charge(&exit_charge(10, 1, 900), &method).await;

    assert!(matches!(result, Err(GatewayError::Rejected { .. })), "{result:?}");
    assert_eq!(ledger.statement(driver(1)).balance(Currency::USD), usd(600));
}

#[tokio::test]
async fn a_charge_to_an_unknown_or_another_drivers_account_or_of_nothing_is_refused() {
    let ledger = LedgerGateway::new();
    let mine = ledger_account(&ledger, driver(1)).await;
    let theirs = ledger_account(&ledger, driver(2)).await;
    let unknown = valet_garage::PaymentMethodToken::parse("ledger-pm-999").unwrap();

    for (request, method) in
        [(exit_charge(10, 1, 600), &theirs), (exit_charge(11, 1, 600), &unknown), (exit_charge(12, 1, 0), &mine)]
    {
        let result = ledger.charge(&request, method).await;
        assert!(matches!(result, Err(GatewayError::Rejected { .. })), "{request:?}: {result:?}");
    }
    assert_eq!(ledger.charge_count(), 0);
}

#[tokio::test]
async fn refunds_are_partial_or_the_rest_never_more_and_each_key_refunds_once() {
    let ledger = LedgerGateway::new();
    let method = ledger_account(&ledger, driver(1)).await;
    let charge = ledger.charge(&exit_charge(10, 1, 600), &method).await.unwrap();
    let refund = |key: &str, amount: Option<Money>| RefundRequest {
        key: RefundKey(key.into()),
        charge_reference: charge.reference.clone(),
        amount,
    };

    let partial = ledger.refund(&refund("r1", Some(usd(200)))).await.unwrap();
    assert_eq!(ledger.refund(&refund("r1", Some(usd(200)))).await.unwrap(), partial, "a retried refund replays");
    let too_much = ledger.refund(&refund("r2", Some(usd(401)))).await;
    assert!(matches!(too_much, Err(GatewayError::Rejected { .. })), "{too_much:?}");
    let rest = ledger.refund(&refund("r3", None)).await.unwrap();
    assert_eq!(rest.amount, usd(400));
    let nothing_left = ledger.refund(&refund("r4", None)).await;
    assert!(matches!(nothing_left, Err(GatewayError::Rejected { .. })), "{nothing_left:?}");

    let statement = ledger.statement(driver(1));
    assert_eq!(statement.lines.len(), 3, "{statement:?}");
    assert_eq!(statement.balance(Currency::USD), usd(0));
    // The refunds as the ledger lists them: the two that took money back, oldest first.
    let listed = ledger.refunds_of(&charge.reference).await.unwrap();
    let listed: Vec<_> = listed.into_iter().map(|r| (r.reference, r.amount)).collect();
    assert_eq!(listed, [(partial.reference, usd(200)), (rest.reference, usd(400))]);
    assert!(ledger.refunds_of("ledger-ch-none").await.unwrap().is_empty());
}
