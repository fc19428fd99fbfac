//! Matching by property (issue 18): a read of a look-alike nobody signed up never picks the
//! signed-up account or its session, whatever the confidences; a read whose spellings all fold to
//! one signed-up key always picks it, and asks nobody unless the read gave no confidence at all.

use proptest::prelude::*;
use valet_garage::{
    Barrier, Candidate, Direction, Driver, EntryContext, EntryOutcome, ExitContext, ExitOutcome, GateConfig,
    ParkingSession, Payer, PaymentMethodToken, Plate, PlateLists, PlateRead, decide_entry, decide_exit, pool,
};

use crate::helpers::{city_centre, driver_id, eur, link, minutes, monday, read_at, session_id};

const GLYPHS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// The glyphs a matching key folds together (`Plate::matching_key`).
const CLASSES: [&str; 5] = ["0OQ", "1I", "8B", "5S", "2Z"];
/// Glyphs that look alike but fold apart: what a different car's plate may truly show.
const LOOK_ALIKES: [(u8, u8); 16] = [
    (b'D', b'0'),
    (b'U', b'V'),
    (b'G', b'6'),
    (b'T', b'7'),
    (b'A', b'4'),
    (b'E', b'F'),
    (b'P', b'R'),
    (b'C', b'G'),
    (b'M', b'N'),
    (b'H', b'N'),
    (b'K', b'X'),
    (b'Y', b'V'),
    (b'3', b'8'),
    (b'6', b'8'),
    (b'9', b'0'),
    (b'L', b'1'),
];
const THRESHOLD: f32 = 0.6;

fn config() -> GateConfig {
    GateConfig {
        review_below_confidence: THRESHOLD,
        when_unsure: Barrier::Hold,
        show_fee_below: eur(1000),
        leave_within_minutes: 15,
    }
}

/// One edit that makes a different plate of a signed-up one.
#[derive(Debug, Clone)]
enum Edit {
    /// The glyph at `at` swapped for a glyph that looks like it but folds apart.
    LookAlike {
        at: usize,
        pair: usize,
    },
    Substitute {
        at: usize,
        glyph: u8,
    },
    Insert {
        at: usize,
        glyph: u8,
    },
    Delete {
        at: usize,
    },
}

fn glyph() -> impl Strategy<Value = u8> {
    proptest::sample::select(GLYPHS)
}

fn signed_up() -> impl Strategy<Value = String> {
    prop::collection::vec(glyph(), 4..=8).prop_map(|g| String::from_utf8(g).unwrap())
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), 0..LOOK_ALIKES.len()).prop_map(|(at, pair)| Edit::LookAlike { at, pair }),
        1 => (any::<usize>(), glyph()).prop_map(|(at, glyph)| Edit::Substitute { at, glyph }),
        1 => (any::<usize>(), glyph()).prop_map(|(at, glyph)| Edit::Insert { at, glyph }),
        1 => any::<usize>().prop_map(|at| Edit::Delete { at }),
    ]
}

/// `plate` with `edit` applied, when the result is a plate of another matching key.
fn look_alike(plate: &str, edit: &Edit) -> Option<String> {
    let mut glyphs = plate.as_bytes().to_vec();
    match *edit {
        Edit::LookAlike { at, pair } => {
            let (a, b) = LOOK_ALIKES[pair];
            let len = glyphs.len();
            let i = (0..len).map(|k| (at % len + k) % len).find(|&i| glyphs[i] == a || glyphs[i] == b)?;
            glyphs[i] = if glyphs[i] == a { b } else { a };
        }
        Edit::Substitute { at, glyph } => glyphs[at % plate.len()] = glyph,
        Edit::Insert { at, glyph } => glyphs.insert(at % (plate.len() + 1), glyph),
        Edit::Delete { at } => {
            glyphs.remove(at % plate.len());
        }
    }
    let other = Plate::parse(std::str::from_utf8(&glyphs).ok()?).ok()?;
    (other.matching_key() != Plate::parse(plate).ok()?.matching_key()).then(|| other.display().to_owned())
}

/// Another spelling of the same matching key: each confusable glyph replaced by a member of its
/// class that `choices` picks.
fn respell(plate: &str, choices: &[u8]) -> String {
    plate
        .chars()
        .enumerate()
        .map(|(i, c)| match CLASSES.iter().find(|class| class.contains(c)) {
            Some(class) => {
                let pick = usize::from(choices.get(i).copied().unwrap_or(0)) % class.len();
                class.chars().nth(pick).unwrap()
            }
            None => c,
        })
        .collect()
}

/// Any confidence a camera could send, sensible or not.
fn confidence() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => 0.0f32..=1.0,
        1 => any::<f32>(),
        1 => Just(f32::NAN),
        1 => Just(-1.0f32),
        1 => Just(f32::INFINITY),
    ]
}

fn spellings() -> impl Strategy<Value = Vec<(Vec<u8>, f32)>> {
    prop::collection::vec((prop::collection::vec(any::<u8>(), 10), confidence()), 0..5)
}

fn read(text: String, confidence: f32, candidates: Vec<(String, f32)>, direction: Direction) -> PlateRead {
    let mut read = read_at(&text, confidence, direction, monday() + minutes(120));
    read.candidates = candidates.into_iter().map(|(text, confidence)| Candidate { text, confidence }).collect();
    read
}

fn driver(plate: &str) -> Driver {
    let mut driver = Driver::new(driver_id(1), PaymentMethodToken::parse("pm_1").unwrap());
    driver.add_plate(Plate::parse(plate).unwrap()).unwrap();
    driver
}

/// The entry's payer for `read` when only `plate` is signed up.
fn entry_payer(read: &PlateRead, plate: &str) -> Option<(Payer, bool)> {
    let (config, lists, drivers) = (config(), PlateLists::default(), [driver(plate)]);
    let ctx = EntryContext {
        config: &config,
        lists: &lists,
        drivers: &drivers,
        permits: &[],
        session_id: session_id(2),
        link: link(2),
    };
    let decision = decide_entry(read, &ctx);
    match decision.outcome {
        EntryOutcome::Opened(session) => Some((session.payer, decision.review.is_some())),
        _ => None,
    }
}

/// The exit's outcome for `read` when only `plate`'s registered session is open.
fn exit_outcome(read: &PlateRead, plate: &str) -> (ExitOutcome, bool) {
    let (config, lists, tariff) = (config(), PlateLists::default(), city_centre());
    let sessions =
        [ParkingSession::open(session_id(1), Plate::parse(plate).unwrap(), monday(), Payer::Registered(driver_id(1)))];
    let decision =
        decide_exit(read, &ExitContext { config: &config, tariff: &tariff, lists: &lists, sessions: &sessions });
    (decision.outcome, decision.review.is_some())
}

fn picks_the_session(outcome: &ExitOutcome) -> bool {
    match outcome {
        ExitOutcome::Charge { session, .. }
        | ExitOutcome::NothingOwed { session, .. }
        | ExitOutcome::PayByPlate { session, .. }
        | ExitOutcome::AlreadyClosed { session } => *session == session_id(1),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_global_rejects: 1_000_000, ..ProptestConfig::default() })]

    /// A look-alike read as itself, in any spellings of its own key and with any confidences,
    /// never reaches the account whose plate it resembles.
    #[test]
    fn a_look_alike_nobody_signed_up_never_picks_the_account(
        plate in signed_up(),
        edit in edit(),
        text in (prop::collection::vec(any::<u8>(), 10), confidence()),
        others in spellings(),
    ) {
        let Some(other) = look_alike(&plate, &edit) else { return Err(TestCaseError::reject("not a look-alike")) };
        let candidates: Vec<_> = others.iter().map(|(choices, c)| (respell(&other, choices), *c)).collect();
        for direction in [Direction::Entry, Direction::Exit] {
            let read = read(respell(&other, &text.0), text.1, candidates.clone(), direction);
            let payer = entry_payer(&read, &plate).map(|(payer, _)| payer);
            prop_assert_ne!(payer, Some(Payer::Registered(driver_id(1))), "{:?}", read);
            let (outcome, _) = exit_outcome(&read, &plate);
            prop_assert!(!picks_the_session(&outcome), "{:?} → {:?}", read, outcome);
        }
    }

    /// The reader may also list the signed-up plate's spellings among a look-alike's candidates:
    /// as long as it is no surer of them than of the look-alike's own key, the account is not picked.
    #[test]
    fn a_look_alike_whose_candidates_include_the_signed_up_plate_never_picks_the_account(
        plate in signed_up(),
        edit in edit(),
        own in prop::collection::vec((prop::collection::vec(any::<u8>(), 10), 0.0f32..=1.0), 1..4),
        theirs in prop::collection::vec((prop::collection::vec(any::<u8>(), 10), 0.0f32..=1.0), 1..4),
    ) {
        let Some(other) = look_alike(&plate, &edit) else { return Err(TestCaseError::reject("not a look-alike")) };
        let mut candidates: Vec<_> = own.iter().map(|(choices, c)| (respell(&other, choices), *c)).collect();
        let signed: Vec<_> = theirs.iter().map(|(choices, c)| (respell(&plate, choices), *c)).collect();
        let probe = read(other.clone(), 0.0, [candidates.clone(), signed.clone()].concat(), Direction::Entry);
        let evidence = |key: &str| pool(&probe).keys.iter().find(|k| k.key.as_str() == key).map_or(0.0, |k| k.evidence);
        let (own_key, their_key) =
            (Plate::parse(&other).unwrap().matching_key(), Plate::parse(&plate).unwrap().matching_key());
        let (mine, theirs) = (evidence(own_key.as_str()), evidence(their_key.as_str()));
        // Scale the signed-up plate's spellings down until they hold no more evidence than the look-alike's.
        let scale = if theirs > mine && theirs > 0.0 { mine / theirs } else { 1.0 };
        candidates.extend(signed.into_iter().map(|(text, c)| (text, c * scale)));
        for direction in [Direction::Entry, Direction::Exit] {
            let read = read(other.clone(), 0.0, candidates.clone(), direction);
            let payer = entry_payer(&read, &plate).map(|(payer, _)| payer);
            prop_assert_ne!(payer, Some(Payer::Registered(driver_id(1))), "{:?}", read);
            let (outcome, _) = exit_outcome(&read, &plate);
            prop_assert!(!picks_the_session(&outcome), "{:?} → {:?}", read, outcome);
        }
    }

    /// Spellings that all fold to the signed-up key are that account, at the entry and the exit;
    /// a person is asked only when the read gave them no confidence at all.
    #[test]
    fn spellings_of_one_signed_up_key_pick_it_with_no_review(
        plate in signed_up(),
        text in (prop::collection::vec(any::<u8>(), 10), confidence()),
        others in spellings(),
    ) {
        let candidates: Vec<_> = others.iter().map(|(choices, c)| (respell(&plate, choices), *c)).collect();
        let entry = read(respell(&plate, &text.0), text.1, candidates.clone(), Direction::Entry);
        let key = pool(&entry).car().cloned().expect("one key is the car");
        let sure = key.evidence > 0.0;

        let (payer, reviewed) = entry_payer(&entry, &plate).expect("opened");
        prop_assert_eq!(payer, Payer::Registered(driver_id(1)));
        prop_assert_eq!(reviewed, !sure, "{:?} pooled {}", entry, key.evidence);

        let exit = read(respell(&plate, &text.0), text.1, candidates, Direction::Exit);
        let (outcome, reviewed) = exit_outcome(&exit, &plate);
        prop_assert!(matches!(outcome, ExitOutcome::Charge { session, .. } if session == session_id(1)), "{:?}", outcome);
        prop_assert_eq!(reviewed, !sure);
    }
}
