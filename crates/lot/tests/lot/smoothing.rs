//! Smoothing as a table: frames in, states and changes out.

use valet_lot::{Smoother, SmoothingConfig, SpaceId, SpaceState};

fn space() -> SpaceId {
    SpaceId::new("s1")
}

/// Feeds `ps` and returns the state after each frame and whether it changed.
fn run(config: SmoothingConfig, ps: &[f32]) -> Vec<(SpaceState, bool)> {
    let mut smoother = Smoother::new(config);
    ps.iter()
        .map(|p| {
            let changed = smoother.observe(&space(), *p).is_some();
            (smoother.get(&space()).unwrap().state, changed)
        })
        .collect()
}

use SpaceState::{Free, Occupied};

#[test]
fn the_first_frame_decides_the_state_outright() {
    assert_eq!(run(SmoothingConfig::default(), &[0.51]), vec![(Occupied, true)]);
    assert_eq!(run(SmoothingConfig::default(), &[0.2]), vec![(Free, true)]);
}

#[test]
fn one_bad_frame_does_not_flip_a_space() {
    let states = run(SmoothingConfig::default(), &[0.05, 0.05, 0.99, 0.05, 0.05]);
    assert!(states.iter().all(|(s, _)| *s == Free), "{states:?}");
    assert_eq!(states.iter().filter(|(_, c)| *c).count(), 1, "only the first frame sets a state");
}

#[test]
fn a_car_that_stays_flips_the_space_after_the_confirmation_frames() {
    let states = run(SmoothingConfig::default(), &[0.05, 0.95, 0.95, 0.95, 0.95]);
    let changed_at: Vec<usize> = states.iter().enumerate().filter(|(_, (_, c))| *c).map(|(i, _)| i).collect();
    // EMA 0.59, 0.81, 0.89: the first frame falls just short of 0.6, the next two confirm.
    assert_eq!(changed_at, vec![0, 3], "{states:?}");
    assert_eq!(states.last().unwrap().0, Occupied);
}

#[test]
fn probabilities_between_the_thresholds_hold_the_current_state() {
    let states = run(SmoothingConfig::default(), &[0.9, 0.45, 0.45, 0.45, 0.55, 0.45]);
    assert!(states.iter().all(|(s, _)| *s == Occupied), "{states:?}");
}

#[test]
fn without_averaging_or_confirmation_every_frame_decides() {
    let raw =
        SmoothingConfig { alpha: 1.0, occupied_above: 0.5, free_below: 0.4999, confirm_frames: 1, unsure_margin: 0.0 };
    let states: Vec<SpaceState> = run(raw, &[0.1, 0.9, 0.1, 0.9]).into_iter().map(|(s, _)| s).collect();
    assert_eq!(states, vec![Free, Occupied, Free, Occupied]);
}

#[test]
fn confidence_backs_the_state_and_falls_while_a_flip_is_pending() {
    let mut smoother = Smoother::new(SmoothingConfig::default());
    smoother.observe(&space(), 0.9);
    assert!((smoother.get(&space()).unwrap().confidence - 0.9).abs() < 1e-6);
    smoother.observe(&space(), 0.0);
    let pending = smoother.get(&space()).unwrap();
    assert_eq!(pending.state, Occupied);
    assert!(pending.confidence < 0.5, "{pending:?}");
}

#[test]
fn a_nan_probability_is_a_coin_toss_not_a_poisoned_average() {
    let mut smoother = Smoother::new(SmoothingConfig::default());
    smoother.observe(&space(), 0.9);
    smoother.observe(&space(), f32::NAN);
    assert!(smoother.get(&space()).unwrap().p_occupied.is_finite());
}

#[test]
fn a_restored_space_continues_with_its_average_instead_of_starting_over() {
    let a = space();
    let mut restored = Smoother::new(SmoothingConfig::default());
    restored.restore(&a, Occupied, 0.9);
    assert_eq!(restored.get(&a).map(|s| (s.state, s.p_occupied)), Some((Occupied, 0.9)));
    // One free-looking frame after a restart does not flip it; a fresh smoother would have
    // called the space free at once.
    assert_eq!(restored.observe(&a, 0.1), None);
    assert_eq!(restored.get(&a).unwrap().state, Occupied);
    let mut fresh = Smoother::new(SmoothingConfig::default());
    assert_eq!(fresh.observe(&a, 0.1).map(|c| c.to), Some(Free));
    // A free space restored with little confidence keeps its average on the free side.
    restored.restore(&a, Free, 0.55);
    assert!((restored.get(&a).unwrap().p_occupied - 0.45).abs() < 1e-6);
}
