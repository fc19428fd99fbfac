//! Where the lots' layouts come from, kept current while Valet runs: [`LayoutWatch`].
//!
//! Three sources, the first winning for a lot id two of them hold: the database (`valet lot add`,
//! `valet lot import --data`: one copy every replica reads, the distributed garage's way), the lots
//! directory (`DATA_DIR/lots/*.toml` or `VALET_LOTS_DIR`: files, the embedded garage's way) and
//! built-in layouts (the demo's). At start-up a layout that does not load stops the process with
//! its source named: a garage must not guide by a half-read map. Afterwards, every
//! [`WATCH_EVERY`], each source is read again and a lot added, changed or removed is put in
//! place (restored from its history) without a restart, in every replica on its own. A layout
//! that breaks while Valet runs is logged once and its lot keeps the layout it had; a database
//! that does not answer changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use valet_lot::Layout;
use valet_occupancy::OccupancyClassifier;
use valet_store::{LotHistory, LotLayouts, StoreError};

use crate::AppState;
use crate::lots::Lots;

/// How often every replica reads the sources again.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The sources, and what was last read from each (so an unchanged layout is not parsed again,
/// and a broken one falls back to the last good one).
#[derive(Debug)]
pub struct LayoutWatch {
    store: LotLayouts,
    dir: PathBuf,
    builtin: Vec<Layout>,
    /// Per lot in the database: the version read, its last good layout, and what is wrong with
    /// that version if anything.
    saved: BTreeMap<String, Read>,
    /// Per file in the lots directory: the text read, likewise.
    files: BTreeMap<PathBuf, (String, Read)>,
    /// Problems already logged, so a broken layout is not logged every few seconds.
    reported: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Read {
    version: i64,
    good: Option<Layout>,
    problem: Option<String>,
}

/// Every layout the sources hold now, by lot id, with where it came from, and what is wrong.
#[derive(Debug, Default)]
struct Reading {
    layouts: BTreeMap<String, (Layout, String)>,
    problems: Vec<String>,
    /// Not wrong, but worth a line: a lot both the database and a file define.
    notes: Vec<String>,
}

impl LayoutWatch {
    pub fn new(store: LotLayouts, dir: PathBuf, builtin: Vec<Layout>) -> LayoutWatch {
        LayoutWatch { store, dir, builtin, saved: BTreeMap::new(), files: BTreeMap::new(), reported: BTreeSet::new() }
    }

    /// Start-up: every layout put in `lots` and restored from its history; any problem is an
    /// error naming every layout that does not load.
    pub async fn load(
        &mut self,
        lots: &Lots,
        classifier: &Arc<OccupancyClassifier>,
        history: &LotHistory,
    ) -> anyhow::Result<()> {
        let reading = self.read().await?;
        anyhow::ensure!(reading.problems.is_empty(), "lot layouts do not load:\n  {}", reading.problems.join("\n  "));
        self.report(&reading);
        self.apply(reading, lots, classifier, history).await?;
        Ok(())
    }

    /// Reads the sources again every [`WATCH_EVERY`] and puts each change in `state`'s lots.
    pub fn spawn(mut self, state: AppState) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = self.once(&state).await {
                    tracing::warn!(error = %e, "reading the lot layouts failed; keeping the ones loaded");
                }
            }
        });
    }

    async fn once(&mut self, state: &AppState) -> Result<(), StoreError> {
        let reading = self.read().await?;
        self.report(&reading);
        self.apply(reading, state.lots(), &state.inner.classifier, &state.store().lot_history()).await
    }

    /// Puts each layout that differs from its lot's in place, and forgets lots no source holds.
    async fn apply(
        &self,
        reading: Reading,
        lots: &Lots,
        classifier: &Arc<OccupancyClassifier>,
        history: &LotHistory,
    ) -> Result<(), StoreError> {
        for id in lots.ids() {
            if !reading.layouts.contains_key(&id) && lots.remove(&id) {
                tracing::info!(lot = %id, "lot layout removed");
            }
        }
        for (id, (layout, source)) in reading.layouts {
            if lots.get(&id).is_some_and(|lot| lot.reader.layout() == &layout) {
                continue;
            }
            let spaces = layout.spaces.len();
            let lot = lots.put(layout, Arc::clone(classifier));
            lot.restore_from(history).await?;
            tracing::info!(lot = %id, spaces, %source, "lot layout loaded");
        }
        Ok(())
    }

    /// Logs each problem and note once, until it goes away.
    fn report(&mut self, reading: &Reading) {
        let now: BTreeSet<String> = reading.problems.iter().chain(&reading.notes).cloned().collect();
        for new in now.difference(&self.reported) {
            if reading.problems.contains(new) {
                tracing::error!(problem = %new, "lot layout not loaded; its lot keeps the layout it had");
            } else {
                tracing::warn!("{new}");
            }
        }
        self.reported = now;
    }

    async fn read(&mut self) -> Result<Reading, StoreError> {
        let mut reading = Reading::default();
        self.read_saved(&mut reading).await?;
        self.read_files(&mut reading);
        for layout in &self.builtin {
            reading.layouts.entry(layout.id.to_string()).or_insert_with(|| (layout.clone(), "built in".to_owned()));
        }
        Ok(reading)
    }

    /// The database: only lots whose version moved are fetched and parsed again.
    async fn read_saved(&mut self, reading: &mut Reading) -> Result<(), StoreError> {
        let versions = self.store.versions().await?;
        self.saved.retain(|lot, _| versions.iter().any(|(id, _)| id == lot));
        for (lot, version) in versions {
            let known = self.saved.entry(lot.clone()).or_default();
            if known.version != version {
                let Some(stored) = self.store.get(&lot).await? else { continue };
                known.version = stored.version;
                match parse(&stored.toml, &lot) {
                    Ok(layout) => (known.good, known.problem) = (Some(layout), None),
                    Err(problem) => known.problem = Some(format!("lot {lot:?} in the database: {problem}")),
                }
            }
            reading.problems.extend(known.problem.clone());
            if let Some(layout) = &known.good {
                reading.layouts.insert(lot, (layout.clone(), "database".to_owned()));
            }
        }
        Ok(())
    }

    /// The lots directory (none when it does not exist): only files whose text changed are
    /// parsed again. Two files for one lot: the first by name wins, and that is a problem.
    fn read_files(&mut self, reading: &mut Reading) {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                reading.problems.push(format!("reading the lots directory {}: {e}", self.dir.display()));
                return;
            }
        };
        paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        paths.sort();
        self.files.retain(|path, _| paths.contains(path));
        let mut from_files = BTreeMap::new();
        for path in paths {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    reading.problems.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let (read_text, known) = self.files.entry(path.clone()).or_default();
            if *read_text != text || (known.good.is_none() && known.problem.is_none()) {
                match parse(&text, &path.display().to_string()) {
                    Ok(layout) => (known.good, known.problem) = (Some(layout), None),
                    Err(problem) => known.problem = Some(format!("{}: {problem}", path.display())),
                }
                *read_text = text;
            }
            reading.problems.extend(known.problem.clone());
            let Some(layout) = &known.good else { continue };
            let id = layout.id.to_string();
            if let Some(first) = from_files.get(&id) {
                reading
                    .problems
                    .push(format!("lot {id:?} is defined twice: in {first} and again in {}", path.display()));
                continue;
            }
            from_files.insert(id.clone(), path.display().to_string());
            match reading.layouts.get(&id) {
                Some(_) => reading.notes.push(format!(
                    "lot {id:?} is in the database and in {}: the database's layout is used",
                    path.display()
                )),
                None => {
                    reading.layouts.insert(id, (layout.clone(), path.display().to_string()));
                }
            }
        }
    }
}

/// The lots directory `settings` name.
pub fn lots_dir(settings: &crate::Settings) -> PathBuf {
    settings.lots_dir.clone().unwrap_or_else(|| settings.data_dir.join("lots"))
}

fn parse(text: &str, what: &str) -> Result<Layout, String> {
    Layout::from_toml(text).map_err(|e| format!("lot layout {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valet_store::Store;

    fn grid(id: &str, spaces: usize) -> Layout {
        let mut layout = valet_lot::synthetic::grid_layout(spaces, 640, 480);
        layout.id = valet_lot::LotId::new(id);
        layout
    }

    fn spaces(lots: &Lots, id: &str) -> Option<usize> {
        lots.get(id).map(|lot| lot.reader.layout().spaces.len())
    }

    /// One tick of the watch; the problems it found.
    async fn again(
        watch: &mut LayoutWatch,
        lots: &Lots,
        classifier: &Arc<OccupancyClassifier>,
        history: &LotHistory,
    ) -> Vec<String> {
        let reading = watch.read().await.unwrap();
        let problems = reading.problems.clone();
        watch.report(&reading);
        watch.apply(reading, lots, classifier, history).await.unwrap();
        problems
    }

    #[tokio::test]
    async fn layouts_come_and_go_while_a_broken_one_keeps_the_last_good_and_the_database_wins() {
        let store = Store::open_in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let classifier = Arc::new(OccupancyClassifier::bundled().unwrap());
        let history = store.lot_history();
        let lots = Lots::default();
        let mut watch = LayoutWatch::new(store.lot_layouts(), dir.path().to_owned(), vec![grid("demo", 3)]);
        watch.load(&lots, &classifier, &history).await.unwrap();
        assert_eq!(lots.ids(), ["demo"], "only the built-in one");

        store.lot_layouts().save("north", &grid("north", 4).to_toml(), chrono::Utc::now()).await.unwrap();
        std::fs::write(dir.path().join("south.toml"), grid("south", 2).to_toml()).unwrap();
        std::fs::write(dir.path().join("demo.toml"), grid("demo", 5).to_toml()).unwrap();
        assert!(again(&mut watch, &lots, &classifier, &history).await.is_empty());
        assert_eq!(
            (spaces(&lots, "north"), spaces(&lots, "south"), spaces(&lots, "demo")),
            (Some(4), Some(2), Some(5))
        );

        // A file for a lot the database holds: the database's layout stays.
        std::fs::write(dir.path().join("north.toml"), grid("north", 9).to_toml()).unwrap();
        assert!(again(&mut watch, &lots, &classifier, &history).await.is_empty());
        assert_eq!(spaces(&lots, "north"), Some(4));

        // A file broken while running: named, and the lot keeps what it had.
        std::fs::write(dir.path().join("south.toml"), "id = \"south\"\n[[spaces]]\n").unwrap();
        let problems = again(&mut watch, &lots, &classifier, &history).await;
        assert!(problems.len() == 1 && problems[0].contains("south.toml"), "{problems:?}");
        assert_eq!(spaces(&lots, "south"), Some(2));

        // Removed from the database and the directory: gone (the built-in demo comes back).
        store.lot_layouts().remove("north").await.unwrap();
        std::fs::remove_file(dir.path().join("north.toml")).unwrap();
        std::fs::remove_file(dir.path().join("south.toml")).unwrap();
        std::fs::remove_file(dir.path().join("demo.toml")).unwrap();
        assert!(again(&mut watch, &lots, &classifier, &history).await.is_empty());
        assert_eq!(lots.ids(), ["demo"]);
        assert_eq!(spaces(&lots, "demo"), Some(3));
    }

    #[tokio::test]
    async fn a_layout_that_does_not_load_stops_the_start_with_its_file_named() {
        let store = Store::open_in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), grid("twice", 2).to_toml()).unwrap();
        std::fs::write(dir.path().join("b.toml"), grid("twice", 3).to_toml()).unwrap();
        std::fs::write(dir.path().join("c.toml"), "not = [a layout").unwrap();
        let classifier = Arc::new(OccupancyClassifier::bundled().unwrap());
        let mut watch = LayoutWatch::new(store.lot_layouts(), dir.path().to_owned(), Vec::new());
        let err = watch.load(&Lots::default(), &classifier, &store.lot_history()).await.unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("\"twice\" is defined twice"), "{err}");
    }
}
