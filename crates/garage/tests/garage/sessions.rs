//! The session state machine: every (state, event) pair, legal or not, and registering mid-stay.

use valet_garage::{
    Exit, ParkingSession, Payer, Price, ReviewDecision, ReviewReason, SessionEvent, SessionState, Stay,
};

use crate::helpers::{city_centre, driver_id, link, minutes, monday, plate, session_id};

fn priced(stay_minutes: i64) -> Price {
    city_centre().price(&Stay::new(monday(), monday() + minutes(stay_minutes)))
}

fn exit() -> Exit {
    Exit { at: monday() + minutes(120), price: priced(120) }
}

fn open() -> ParkingSession {
    ParkingSession::open(session_id(1), plate("AB0123"), monday(), Payer::Unregistered { link: link(9) })
}

fn at() -> chrono::DateTime<chrono::Utc> {
    monday() + minutes(130)
}

/// A session brought to `state` by legal events.
fn in_state(state: &str) -> ParkingSession {
    let mut session = open();
    let path: Vec<SessionEvent> = match state {
        "open" => vec![],
        "closed" => vec![SessionEvent::Exit(exit())],
        "paid" => vec![SessionEvent::Exit(exit()), SessionEvent::PaymentSucceeded { at: at() }],
        "unpaid" => vec![SessionEvent::Exit(exit()), SessionEvent::PaymentFailed { at: at() }],
        "in review" => vec![SessionEvent::Exit(exit()), raised()],
        other => panic!("no state {other}"),
    };
    for event in path {
        session.apply(event).unwrap();
    }
    assert_eq!(session.state().name(), state);
    session
}

fn raised() -> SessionEvent {
    SessionEvent::RaisedForReview { reason: ReviewReason::Disputed { note: "driver says they left at noon".into() } }
}

#[test]
fn every_state_and_event_pair_is_either_a_written_transition_or_refused() {
    type MakeEvent = fn() -> SessionEvent;
    let events: [(&str, MakeEvent); 7] = [
        ("exit", || SessionEvent::Exit(exit())),
        ("succeeded", || SessionEvent::PaymentSucceeded { at: at() }),
        ("failed", || SessionEvent::PaymentFailed { at: at() }),
        ("review", raised),
        ("mark paid", || SessionEvent::Decided(ReviewDecision::MarkPaid { at: at() })),
        ("mark unpaid", || SessionEvent::Decided(ReviewDecision::MarkUnpaid { at: at() })),
        ("reprice", || SessionEvent::Decided(ReviewDecision::Reprice { price: priced(60), at: at() })),
    ];
    // Rows are states, columns the events above; each cell the state after, or "-" for refused.
    let table = [
        ("open", ["closed", "-", "-", "-", "-", "-", "-"]),
        ("closed", ["-", "paid", "unpaid", "in review", "-", "-", "-"]),
        ("paid", ["-", "paid", "-", "-", "-", "-", "-"]),
        ("unpaid", ["-", "paid", "unpaid", "in review", "-", "-", "-"]),
        ("in review", ["-", "-", "-", "-", "paid", "unpaid", "closed"]),
    ];
    for (state, row) in table {
        for ((event_name, event), expected) in events.iter().zip(row) {
            let mut session = in_state(state);
            let before = session.clone();
            let result = session.apply(event());
            if expected == "-" {
                let error = result.expect_err(&format!("{state} + {event_name} should be refused"));
                assert_eq!(session, before, "{state} + {event_name}: a refused event must change nothing");
                assert!(error.to_string().contains(state), "{error}");
            } else {
                result.unwrap_or_else(|e| panic!("{state} + {event_name}: {e}"));
                assert_eq!(session.state().name(), expected, "{state} + {event_name}");
            }
        }
    }
}

#[test]
fn a_stay_owing_nothing_is_paid_as_it_closes() {
    let mut session = open();
    session.apply(SessionEvent::Exit(Exit { at: monday() + minutes(5), price: priced(5) })).unwrap();
    assert!(matches!(session.state(), SessionState::Paid { at, .. } if *at == monday() + minutes(5)));

    let mut reviewed = in_state("in review");
    let waived = ReviewDecision::Reprice { price: priced(0), at: at() };
    reviewed.apply(SessionEvent::Decided(waived)).unwrap();
    assert!(matches!(reviewed.state(), SessionState::Paid { at: paid, .. } if *paid == at()));
}

#[test]
fn a_repeated_payment_success_keeps_the_first_payment_time() {
    let mut session = in_state("paid");
    session.apply(SessionEvent::PaymentSucceeded { at: at() + minutes(60) }).unwrap();
    assert!(matches!(session.state(), SessionState::Paid { at: paid, .. } if *paid == at()));
}

#[test]
fn repricing_keeps_the_exit_time_and_takes_the_new_price() {
    let mut session = in_state("in review");
    session.apply(SessionEvent::Decided(ReviewDecision::Reprice { price: priced(60), at: at() })).unwrap();
    let exit = session.state().exit().unwrap();
    assert_eq!((exit.at, exit.price.total), (monday() + minutes(120), priced(60).total));
}

#[test]
fn a_driver_may_register_during_a_session_but_not_take_over_anothers() {
    let mut session = open();
    session.register(driver_id(1)).unwrap();
    assert_eq!(session.payer, Payer::Registered(driver_id(1)));
    session.register(driver_id(1)).unwrap();
    let error = session.register(driver_id(2)).unwrap_err();
    assert_eq!(error.driver, driver_id(1));
    assert_eq!(session.payer, Payer::Registered(driver_id(1)));
}
