//! Scoring verdicts against labels: the confusion matrix and what is derived from it.

use crate::SpaceState;

/// Counts of (truth, predicted) pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Confusion {
    /// `counts[truth][predicted]`, index 0 = free, 1 = occupied.
    pub counts: [[u64; 2]; 2],
}

/// Precision and recall of one class; `None` when undefined (no such predictions or truths).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PerClass {
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub support: u64,
}

fn index(state: SpaceState) -> usize {
    match state {
        SpaceState::Free => 0,
        SpaceState::Occupied => 1,
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Confusion {
    pub fn add(&mut self, truth: SpaceState, predicted: SpaceState) {
        self.counts[index(truth)][index(predicted)] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn correct(&self) -> u64 {
        self.counts[0][0] + self.counts[1][1]
    }

    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.correct(), self.total())
    }

    pub fn class(&self, state: SpaceState) -> PerClass {
        let i = index(state);
        let predicted = self.counts[0][i] + self.counts[1][i];
        let truth = self.counts[i][0] + self.counts[i][1];
        PerClass {
            precision: ratio(self.counts[i][i], predicted),
            recall: ratio(self.counts[i][i], truth),
            support: truth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SpaceState::{Free, Occupied};

    #[test]
    fn precision_and_recall_follow_the_confusion_matrix() {
        let mut c = Confusion::default();
        for (truth, predicted, n) in
            [(Occupied, Occupied, 8), (Occupied, Free, 2), (Free, Free, 9), (Free, Occupied, 1)]
        {
            for _ in 0..n {
                c.add(truth, predicted);
            }
        }
        assert_eq!(c.total(), 20);
        assert_eq!(c.accuracy(), Some(17.0 / 20.0));
        let occ = c.class(Occupied);
        assert_eq!((occ.precision, occ.recall, occ.support), (Some(8.0 / 9.0), Some(0.8), 10));
        let free = c.class(Free);
        assert_eq!((free.precision, free.recall), (Some(9.0 / 11.0), Some(0.9)));
    }

    #[test]
    fn an_empty_matrix_has_no_accuracy_rather_than_a_nan() {
        let c = Confusion::default();
        assert_eq!(c.accuracy(), None);
        assert_eq!(c.class(Free).precision, None);
    }
}
