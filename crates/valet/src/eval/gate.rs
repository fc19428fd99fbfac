//! `valet eval gate DIR`: the gate end to end on labelled plate photos, as a new user measures it.
//!
//! Every image's true plate is signed up first (one driver per plate, all of them in one garage,
//! so drivers' plates may be look-alikes of each other, as in a real one). Each photo is read by
//! the bundled plate reader exactly as the gate's plate-reader function reads a frame (default
//! options, the first plate found), posted to an embedded `GateService` (a temporary SQLite store,
//! the ledger gateway, €3 per started hour with no grace) as the car's entry read and, a minute
//! later, as its exit read. Each car ends as: charged to the right driver with no review item,
//! charged to the right driver with one, charged to another driver, not charged with a review
//! item, or not charged and not reviewed.
//!
//! `--lookalikes` signs up, instead, a look-alike of each image's plate (one glyph swapped for a
//! glyph that looks like it but folds to another matching key) and nobody with the true plate:
//! every charge is then a false match, and the target is none.
//!
//! DIR and `--only` are read as `valet eval plates` reads them ([`super::plates`]).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;
use valet_billing::{LedgerGateway, PaymentGateway};
use valet_garage::{
    Barrier, CameraId, Candidate, Currency, Direction, Driver, DriverId, ExitOutcome, GateConfig, MatchingKey, Money,
    Plate, PlateRead, Tariff,
};
use valet_gate::{FixedClock, GateService};
use valet_imaging::DecodeLimits;
use valet_plates::{PlateReader, ReaderOptions};
use valet_store::{PlateKey, Store};

use super::plates::{read_list, region_sets, selects};

#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// A folder in the openalpr benchmark layout: `name.jpg` beside `name.txt` (`file x y w h PLATE`).
    dir: PathBuf,
    /// Evaluate only the images this file lists, one path per line (e.g. `us/abc.jpg`).
    #[arg(long)]
    only: Option<PathBuf>,
    /// Sign up a look-alike of each plate instead of the plate: every charge is a false match.
    #[arg(long)]
    lookalikes: bool,
    /// The last line is one JSON object: the counts overall, per_region, and each car not charged
    /// to its driver automatically.
    #[arg(long)]
    json: bool,
}

/// How one car ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    /// Charged to the driver whose plate it is, and nobody was asked.
    Right,
    /// Charged to the right driver, with a review item raised on the way.
    RightReviewed,
    /// Charged to a driver whose plate it is not (with `--lookalikes`: a false match).
    Wrong,
    /// Not charged; a person was asked.
    Review,
    /// Not charged and nobody asked (paid by plate at the barrier, nothing owed, let out).
    NotCharged,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct Counts {
    n: usize,
    right: usize,
    right_reviewed: usize,
    wrong: usize,
    review: usize,
    not_charged: usize,
}

impl Counts {
    fn add(&mut self, verdict: Verdict) {
        self.n += 1;
        match verdict {
            Verdict::Right => self.right += 1,
            Verdict::RightReviewed => self.right_reviewed += 1,
            Verdict::Wrong => self.wrong += 1,
            Verdict::Review => self.review += 1,
            Verdict::NotCharged => self.not_charged += 1,
        }
    }

    fn json(&self) -> serde_json::Value {
        let mut value = json!(self);
        value["right_rate"] = json!(self.right as f64 / self.n.max(1) as f64);
        value
    }
}

/// A car that was not charged to its driver automatically.
#[derive(Debug, serde::Serialize)]
struct Miss {
    file: String,
    truth: String,
    signed_up: String,
    read: String,
    confidence: f32,
    verdict: Verdict,
    entry: String,
    exit: String,
}

/// One image to put through the gate.
#[derive(Debug)]
struct Car {
    region: String,
    file: String,
    truth: Plate,
    path: PathBuf,
}

pub async fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    let cars = cars(&args)?;
    let reader = PlateReader::bundled()?;
    let scratch = tempfile::tempdir().context("a temporary folder for the garage's database")?;
    let store = Store::open(scratch.path()).await.context("opening the temporary garage")?;
    let clock = Arc::new(FixedClock::new(start()));
    let gate = GateService::new(
        store.garage(PlateKey::new(b"valet-eval-gate-plate-key-32-bytes")?),
        LedgerGateway::new(),
        tariff()?,
        config(),
        clock.clone(),
    );

    // Who signs up: each image's plate, or its look-alike; one driver per matching key.
    let truths: Vec<MatchingKey> = cars.iter().map(|c| c.truth.matching_key()).collect();
    let mut owners: HashMap<MatchingKey, DriverId> = HashMap::new();
    let mut signed_up = Vec::with_capacity(cars.len());
    for car in &cars {
        let plate = if args.lookalikes {
            look_alike(&car.truth, &truths).with_context(|| format!("no look-alike of {}", car.truth))?
        } else {
            car.truth.clone()
        };
        if let Entry::Vacant(slot) = owners.entry(plate.matching_key()) {
            let id = DriverId::from_bytes(rand::random());
            sign_up(&gate, id, &plate).await?;
            slot.insert(id);
        }
        signed_up.push(plate);
    }

    let limits = DecodeLimits::default();
    let mut per_region: BTreeMap<String, Counts> = BTreeMap::new();
    let mut all = Counts::default();
    let mut misses = Vec::new();
    let mut read_ms = 0.0;
    for (i, (car, signed)) in cars.iter().zip(&signed_up).enumerate() {
        let t = Instant::now();
        let (text, confidence, candidates) = read_photo(&reader, &car.path, &limits)?;
        read_ms += t.elapsed().as_secs_f64() * 1e3;
        // An hour apart, so one car's leave window never reaches the next.
        let entry_at = start() + TimeDelta::hours(i as i64);
        let exit_at = entry_at + TimeDelta::minutes(1);
        let read = |direction: Direction, at: DateTime<Utc>| PlateRead {
            text: text.clone(),
            confidence,
            candidates: candidates.clone(),
            camera: CameraId(format!("eval-{direction:?}").to_lowercase()),
            direction,
            at,
        };
        clock.set(entry_at);
        let entry = gate.handle_entry(&read(Direction::Entry, entry_at)).await?;
        clock.set(exit_at);
        let exit = gate.handle_exit(&read(Direction::Exit, exit_at)).await?;

        let reviewed = entry.review.is_some() || !exit.review.is_empty();
        let right_driver = (!args.lookalikes).then(|| owners[&car.truth.matching_key()]);
        let verdict = match &exit.decision.outcome {
            ExitOutcome::Charge { charge, .. } if Some(charge.driver) == right_driver => {
                if reviewed {
                    Verdict::RightReviewed
                } else {
                    Verdict::Right
                }
            }
            ExitOutcome::Charge { .. } => Verdict::Wrong,
            _ if reviewed => Verdict::Review,
            _ => Verdict::NotCharged,
        };
        all.add(verdict);
        per_region.entry(car.region.clone()).or_default().add(verdict);
        if verdict != Verdict::Right {
            misses.push(Miss {
                file: car.file.clone(),
                truth: car.truth.to_string(),
                signed_up: signed.to_string(),
                read: text.clone(),
                confidence,
                verdict,
                entry: outcome_name(&entry.decision.outcome),
                exit: exit_name(&exit.decision.outcome),
            });
        }
    }

    print_report(&args, &per_region, &all, &misses, read_ms / cars.len().max(1) as f64);
    if args.json {
        let regions: BTreeMap<_, _> = per_region.iter().map(|(name, c)| (name.clone(), c.json())).collect();
        let mut line = all.json();
        line["mode"] = json!(if args.lookalikes { "lookalikes" } else { "signed_up" });
        line["false_matches"] = json!(if args.lookalikes { all.wrong } else { 0 });
        line["per_region"] = json!(regions);
        line["misses"] = json!(misses);
        line["read_ms_per_image"] = json!(read_ms / cars.len().max(1) as f64);
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The labelled images, each with its first labelled plate (a label that is no plate is skipped).
fn cars(args: &GateArgs) -> anyhow::Result<Vec<Car>> {
    let only = args.only.as_deref().map(read_list).transpose()?;
    let mut cars = Vec::new();
    for set in region_sets(&args.dir, None)? {
        for sample in set.samples {
            if only.as_ref().is_some_and(|only| !only.iter().any(|entry| selects(entry, &sample.name))) {
                continue;
            }
            let Some(truth) = sample.plates.first().and_then(|p| Plate::parse(&p.text).ok()) else {
                eprintln!("warning: {} has no plate a driver could sign up; skipped", sample.name);
                continue;
            };
            cars.push(Car { region: set.name.clone(), file: sample.name, truth, path: sample.path });
        }
    }
    if cars.is_empty() {
        bail!(
            "no labelled images in {}{}",
            args.dir.display(),
            if only.is_some() { " on the --only list" } else { "" }
        );
    }
    Ok(cars)
}

/// The photo read as the gate's plate-reader function reads a frame: default options, the first
/// plate found (the car in the lane), its text, confidence and candidates; no plate reads as "".
fn read_photo(
    reader: &PlateReader,
    path: &std::path::Path,
    limits: &DecodeLimits,
) -> anyhow::Result<(String, f32, Vec<Candidate>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let decoded = match valet_imaging::decode(&bytes, limits) {
        Ok(decoded) => decoded,
        Err(e) => {
            eprintln!("warning: {}: {e}; read as no plate", path.display());
            return Ok((String::new(), 0.0, Vec::new()));
        }
    };
    let reading = reader.read(&decoded.image, &ReaderOptions::default())?;
    Ok(match reading.plates.into_iter().next() {
        Some(plate) => (
            plate.text,
            plate.confidence,
            plate.candidates.into_iter().map(|c| Candidate { text: c.text, confidence: c.confidence }).collect(),
        ),
        None => (String::new(), 0.0, Vec::new()),
    })
}

/// Glyph pairs that look alike but fold to different matching keys (neither is in the other's
/// confusion class): what another car's plate may really show.
const LOOK_ALIKES: [(char, char); 16] = [
    ('D', '0'),
    ('U', 'V'),
    ('G', '6'),
    ('T', '7'),
    ('A', '4'),
    ('E', 'F'),
    ('P', 'R'),
    ('C', 'G'),
    ('M', 'N'),
    ('H', 'N'),
    ('K', 'X'),
    ('Y', 'V'),
    ('3', '8'),
    ('6', '8'),
    ('9', '0'),
    ('L', '1'),
];

/// A deterministic look-alike of `plate`: the last glyph that has a look-alike partner swapped
/// for it (else the last glyph swapped for the next letter or digit), whose matching key is
/// neither `plate`'s nor any labelled plate's (`taken`), so nobody's true plate is signed up.
fn look_alike(plate: &Plate, taken: &[MatchingKey]) -> Option<Plate> {
    let glyphs: Vec<char> = plate.display().chars().collect();
    let free = |p: &Plate| p.matching_key() != plate.matching_key() && !taken.contains(&p.matching_key());
    let swapped = |i: usize, to: char| {
        let mut g = glyphs.clone();
        g[i] = to;
        Plate::parse(&g.into_iter().collect::<String>()).ok()
    };
    for i in (0..glyphs.len()).rev() {
        for (a, b) in LOOK_ALIKES {
            let to = if glyphs[i] == a {
                b
            } else if glyphs[i] == b {
                a
            } else {
                continue;
            };
            if let Some(other) = swapped(i, to).filter(free) {
                return Some(other);
            }
        }
    }
    // No look-alike glyph: any one-glyph change of the same kind (letter for letter, digit for digit).
    for i in (0..glyphs.len()).rev() {
        let next = match glyphs[i] {
            'Z' => 'A',
            '9' => '0',
            c => char::from(c as u8 + 1),
        };
        if let Some(other) = swapped(i, next).filter(free) {
            return Some(other);
        }
    }
    None
}

async fn sign_up(gate: &GateService<LedgerGateway>, id: DriverId, plate: &Plate) -> anyhow::Result<()> {
    let ledger = gate.biller().gateway();
    let customer = ledger.create_customer(id).await?;
    let setup = ledger.start_card_setup(&customer).await?;
    let method = ledger.saved_payment_method(&setup.id).await?;
    let mut driver = Driver::new(id, method);
    driver.add_plate(plate.clone())?;
    gate.store().register_driver(&driver, start() - TimeDelta::days(1)).await?;
    Ok(())
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).single().expect("a valid date")
}

/// €3 per started hour, no grace: a one-minute stay owes, so every matched exit is a charge.
fn tariff() -> anyhow::Result<Tariff> {
    Ok(Tariff::from_toml(
        r#"
        currency = "EUR"
        daily_max_minor = 2000
        [[bands]]
        name = "hourly"
        from_minute = 0
        every_minutes = 60
        price_minor = 300
        "#,
    )?)
}

/// `valet serve`'s defaults.
fn config() -> GateConfig {
    GateConfig {
        review_below_confidence: 0.6,
        when_unsure: Barrier::Lift,
        show_fee_below: Money::new(5000, Currency::EUR),
        leave_within_minutes: 15,
    }
}

fn outcome_name(outcome: &valet_garage::EntryOutcome) -> String {
    match outcome {
        valet_garage::EntryOutcome::Refused { .. } => "refused".into(),
        valet_garage::EntryOutcome::Exempt { .. } => "exempt".into(),
        valet_garage::EntryOutcome::Opened(session) => match session.payer {
            valet_garage::Payer::Registered(_) => format!("opened {} registered", session.plate),
            valet_garage::Payer::Unregistered { .. } => format!("opened {} unregistered", session.plate),
        },
        valet_garage::EntryOutcome::Unreadable => "unreadable".into(),
    }
}

fn exit_name(outcome: &ExitOutcome) -> String {
    match outcome {
        ExitOutcome::Charge { .. } => "charged",
        ExitOutcome::NothingOwed { .. } => "nothing_owed",
        ExitOutcome::PayByPlate { .. } => "pay_by_plate",
        ExitOutcome::AlreadyClosed { .. } => "already_closed",
        ExitOutcome::Exempt { .. } => "exempt",
        ExitOutcome::Ambiguous { .. } => "ambiguous",
        ExitOutcome::NoOpenSession => "no_open_session",
        ExitOutcome::Unreadable => "unreadable",
    }
    .to_owned()
}

fn print_report(args: &GateArgs, per_region: &BTreeMap<String, Counts>, all: &Counts, misses: &[Miss], read_ms: f64) {
    println!(
        "gate end to end on {}{}: {}",
        args.dir.display(),
        args.only.as_ref().map_or(String::new(), |p| format!(", only those listed in {}", p.display())),
        if args.lookalikes {
            "a look-alike of each plate signed up, nobody with the plate itself (every charge is a false match)"
        } else {
            "each plate signed up, entry read then exit read a minute later"
        }
    );
    let wrong = if args.lookalikes { "false match" } else { "wrong driver" };
    println!(
        "{:<8} {:>5} {:>14} {:>14} {:>12} {:>8} {:>12}",
        "region", "n", "right, no review", "right, review", wrong, "review", "not charged"
    );
    let pct = |k: usize, n: usize| format!("{k} ({:.1} %)", k as f64 * 100.0 / n.max(1) as f64);
    let row = |name: &str, c: &Counts| {
        println!(
            "{name:<8} {:>5} {:>16} {:>14} {:>12} {:>8} {:>12}",
            c.n,
            pct(c.right, c.n),
            c.right_reviewed,
            c.wrong,
            c.review,
            c.not_charged
        );
    };
    for (name, counts) in per_region {
        row(name, counts);
    }
    if per_region.len() > 1 {
        row("all", all);
    }
    println!("plate reading: {read_ms:.1} ms per image (decode + read, as the gate's plate reader)");
    if !misses.is_empty() {
        println!("not charged to their driver automatically ({}):", misses.len());
        for m in misses {
            println!(
                "  {:<40} truth {:<10} signed up {:<10} read {:<10} {:.2}  {:?}: entry {}, exit {}",
                m.file,
                m.truth,
                m.signed_up,
                if m.read.is_empty() { "—" } else { &m.read },
                m.confidence,
                m.verdict,
                m.entry,
                m.exit
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plate(raw: &str) -> Plate {
        Plate::parse(raw).unwrap()
    }

    #[test]
    fn a_look_alike_swaps_one_glyph_for_one_that_folds_apart_and_avoids_true_plates() {
        assert_eq!(look_alike(&plate("WA56660"), &[]), Some(plate("WA5666D")));
        // The swap that would land on another car's true plate is passed over.
        assert_eq!(look_alike(&plate("WA56660"), &[plate("WA5666D").matching_key()]), Some(plate("WA56669")));
        // Nothing with a look-alike partner: the next glyph of the same kind.
        assert_eq!(look_alike(&plate("JJJ"), &[]), Some(plate("JJK")));
        for raw in ["AB123CD", "ZZZ", "0000", "QQ11"] {
            let other = look_alike(&plate(raw), &[]).unwrap();
            assert_ne!(other.matching_key(), plate(raw).matching_key(), "{raw} → {other}");
            let changed = raw.chars().zip(other.display().chars()).filter(|(a, b)| a != b).count();
            assert_eq!(changed, 1, "{raw} → {other}");
        }
    }
}
