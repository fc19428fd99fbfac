//! [`LedgerGateway`]: the embedded default gateway. It moves no money: a charge records what a
//! driver owes (a receivable), a refund reduces it, and [`LedgerGateway::statement`] lists both
//! with the balance, for an operator who collects by invoice or at a kiosk.
//!
//! The book is kept in memory behind a mutex and is lost with the process. Durable receivables
//! come from the store layer: it persists every [`GatewayCharge`] the `Biller` records through its
//! `ChargeLog`, and a restarted ledger is answered from that record, not from this one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use valet_garage::{ChargeRequest, Currency, DriverId, IdempotencyKey, Money, PaymentMethodToken, SessionId};

use crate::gateway::{
    CardSetup, CustomerRef, GatewayCharge, GatewayError, GatewayRefund, PaymentGateway, ProviderOutcome,
    ProviderRefund, RefundKey, RefundRequest, check_chargeable,
};

/// One line of a driver's statement, in the order the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementLine {
    Charge { session: SessionId, idempotency_key: IdempotencyKey, reference: String, amount: Money },
    Refund { key: RefundKey, reference: String, charge_reference: String, amount: Money },
}

/// What one driver owes: every charge and refund, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub driver: DriverId,
    pub lines: Vec<StatementLine>,
}

impl Statement {
    /// Charges less refunds in `currency`: what the driver still owes.
    pub fn balance(&self, currency: Currency) -> Money {
        let minor = self
            .lines
            .iter()
            .map(|line| match line {
                StatementLine::Charge { amount, .. } => *amount,
                StatementLine::Refund { amount, .. } => Money::new(-amount.minor, amount.currency),
            })
            .filter(|amount| amount.currency == currency)
            // Each line is one bounded parking charge; saturating keeps a corrupt book from panicking.
            .fold(0i64, |sum, amount| sum.saturating_add(amount.minor));
        Money::new(minor, currency)
    }
}

#[derive(Debug)]
struct RecordedCharge {
    request: ChargeRequest,
    method: PaymentMethodToken,
    charge: GatewayCharge,
    refunded: i64,
}

#[derive(Debug, Default)]
struct Book {
    next_number: u64,
    customers: HashMap<DriverId, CustomerRef>,
    drivers: HashMap<CustomerRef, DriverId>,
    setups: HashMap<String, DriverId>,
    methods: HashMap<PaymentMethodToken, DriverId>,
    charges: BTreeMap<IdempotencyKey, RecordedCharge>,
    charge_keys: HashMap<String, IdempotencyKey>,
    refunds: HashMap<RefundKey, (RefundRequest, GatewayRefund)>,
    /// Every driver's lines in the order they were recorded.
    journal: Vec<(DriverId, StatementLine)>,
}

impl Book {
    fn number(&mut self) -> u64 {
        self.next_number += 1;
        self.next_number
    }
}

/// The embedded payment gateway: receivables per driver, refunds and statements, in memory.
#[derive(Debug, Default)]
pub struct LedgerGateway {
    book: Mutex<Book>,
}

impl LedgerGateway {
    pub fn new() -> LedgerGateway {
        LedgerGateway::default()
    }

    /// Every charge and refund recorded for `driver`, with [`Statement::balance`] for what is owed.
    pub fn statement(&self, driver: DriverId) -> Statement {
        let book = self.book();
        let lines = book.journal.iter().filter(|(d, _)| *d == driver).map(|(_, line)| line.clone()).collect();
        Statement { driver, lines }
    }

    /// How many charges the ledger holds, all drivers together: one per idempotency key, however
    /// often a key was sent.
    pub fn charge_count(&self) -> usize {
        self.book().charges.len()
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic while the book was held cannot leave it half-written: every method checks first
        // and then inserts, so the book stays usable.
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn charge_now(&self, request: &ChargeRequest, method: &PaymentMethodToken) -> Result<GatewayCharge, GatewayError> {
        let mut book = self.book();
        if let Some(recorded) = book.charges.get(&request.idempotency_key) {
            // As a payment provider does: the first answer again, unless the key is being reused
            // for a different charge, which is a bug worth refusing loudly.
            if recorded.request != *request || recorded.method != *method {
                return Err(rejected(format!(
                    "idempotency key {} was first used for a different charge",
                    request.idempotency_key
                )));
            }
            return Ok(recorded.charge.clone());
        }
        check_chargeable(request)?;
        let Some(&owner) = book.methods.get(method) else {
            return Err(rejected(format!("no ledger account for payment method {}", method.as_str())));
        };
        if owner != request.driver {
            return Err(rejected(format!("payment method {} belongs to another driver", method.as_str())));
        }
        let reference = format!("ledger-ch-{}", book.number());
        let charge = GatewayCharge {
            idempotency_key: request.idempotency_key.clone(),
            reference: reference.clone(),
            amount: request.amount,
        };
        book.charge_keys.insert(reference.clone(), request.idempotency_key.clone());
        book.charges.insert(
            request.idempotency_key.clone(),
            RecordedCharge { request: request.clone(), method: method.clone(), charge: charge.clone(), refunded: 0 },
        );
        book.journal.push((
            request.driver,
            StatementLine::Charge {
                session: request.session,
                idempotency_key: request.idempotency_key.clone(),
                reference,
                amount: request.amount,
            },
        ));
        Ok(charge)
    }

    fn refund_now(&self, request: &RefundRequest) -> Result<GatewayRefund, GatewayError> {
        let mut book = self.book();
        if let Some((first, refund)) = book.refunds.get(&request.key) {
            if first != request {
                return Err(rejected(format!("refund key {} was first used for a different refund", request.key.0)));
            }
            return Ok(refund.clone());
        }
        let reference = format!("ledger-re-{}", book.number());
        let Some(key) = book.charge_keys.get(&request.charge_reference).cloned() else {
            return Err(rejected(format!("no charge {} in the ledger", request.charge_reference)));
        };
        let Some(charge) = book.charges.get_mut(&key) else {
            return Err(rejected(format!("no charge {} in the ledger", request.charge_reference)));
        };
        let charged = charge.charge.amount;
        let remaining = charged.minor - charge.refunded;
        let amount = request.amount.unwrap_or(Money::new(remaining, charged.currency));
        if amount.currency != charged.currency {
            return Err(rejected(format!(
                "charge {} was in {}, not {}",
                request.charge_reference, charged.currency, amount.currency
            )));
        }
        if amount.minor <= 0 || amount.minor > remaining {
            let left = Money::new(remaining, charged.currency);
            return Err(rejected(format!(
                "cannot refund {amount} of {}: {left} is left to refund",
                request.charge_reference
            )));
        }
        charge.refunded += amount.minor;
        let driver = charge.request.driver;
        let refund = GatewayRefund {
            key: request.key.clone(),
            reference: reference.clone(),
            charge_reference: request.charge_reference.clone(),
            amount,
        };
        book.refunds.insert(request.key.clone(), (request.clone(), refund.clone()));
        book.journal.push((
            driver,
            StatementLine::Refund {
                key: request.key.clone(),
                reference,
                charge_reference: request.charge_reference.clone(),
                amount,
            },
        ));
        Ok(refund)
    }
}

fn rejected(message: String) -> GatewayError {
    GatewayError::Rejected { message }
}

impl PaymentGateway for LedgerGateway {
    async fn create_customer(&self, driver: DriverId) -> Result<CustomerRef, GatewayError> {
        let mut book = self.book();
        if let Some(customer) = book.customers.get(&driver) {
            return Ok(customer.clone());
        }
        // Numbered, not named after the driver id: 32 hex digits can hold a run of twelve decimal
        // digits, which `PaymentMethodToken::parse` would rightly take for a card number.
        let customer = CustomerRef(format!("ledger-cus-{}", book.number()));
        book.customers.insert(driver, customer.clone());
        book.drivers.insert(customer.clone(), driver);
        Ok(customer)
    }

    async fn start_card_setup(&self, customer: &CustomerRef) -> Result<CardSetup, GatewayError> {
        let mut book = self.book();
        let Some(&driver) = book.drivers.get(customer) else {
            return Err(rejected(format!("no ledger customer {}", customer.0)));
        };
        let id = format!("ledger-seti-{}", book.number());
        book.setups.insert(id.clone(), driver);
        Ok(CardSetup { id, customer: customer.clone(), client_secret: None })
    }

    /// The ledger has no card to wait for: a setup is complete at once, and its account token is
    /// the setup's own number, so asking twice gives the same token.
    async fn saved_payment_method(&self, setup_id: &str) -> Result<PaymentMethodToken, GatewayError> {
        let mut book = self.book();
        let Some(&driver) = book.setups.get(setup_id) else {
            return Err(rejected(format!("no ledger card setup {setup_id}")));
        };
        let number = setup_id.trim_start_matches("ledger-seti-");
        let token = PaymentMethodToken::parse(&format!("ledger-pm-{number}"))
            .map_err(|error| rejected(format!("ledger token: {error}")))?;
        book.methods.insert(token.clone(), driver);
        Ok(token)
    }

    async fn charge(
        &self,
        request: &ChargeRequest,
        method: &PaymentMethodToken,
    ) -> Result<GatewayCharge, GatewayError> {
        self.charge_now(request, method)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<GatewayRefund, GatewayError> {
        self.refund_now(request)
    }

    async fn look_up(&self, request: &ChargeRequest) -> Result<Option<ProviderOutcome>, GatewayError> {
        let book = self.book();
        Ok(book.charges.get(&request.idempotency_key).map(|recorded| ProviderOutcome::Paid(recorded.charge.clone())))
    }

    async fn refunds_of(&self, charge_reference: &str) -> Result<Vec<ProviderRefund>, GatewayError> {
        let book = self.book();
        let mut refunds: Vec<ProviderRefund> = book
            .refunds
            .values()
            .filter(|(_, refund)| refund.charge_reference == charge_reference)
            .map(|(_, refund)| ProviderRefund { reference: refund.reference.clone(), amount: refund.amount })
            .collect();
        // References are numbered in the order the refunds were made.
        refunds.sort_by_key(|refund| refund.reference.trim_start_matches("ledger-re-").parse::<u64>().unwrap_or(0));
        Ok(refunds)
    }
}
