//! CTC decoding of the recogniser's per-step class probabilities ([`Posteriors`]): greedy best path,
//! prefix beam search for alternatives, and the exact probability and best alignment of any given
//! spelling (which is how format-corrected spellings are scored).
//!
//! Class 0 is the CTC blank; class `i + 1` is the alphabet's `i`-th glyph. Probabilities multiply in
//! `f64`: 32 steps of small probabilities underflow `f32` long before they stop mattering.

use std::collections::HashMap;

const BLANK: usize = 0;

/// Classes below this probability at a step are not tried as beam extensions there: they cannot
/// lift a prefix into the beam, and skipping them keeps the search linear in the steps.
const MIN_EXTENSION: f32 = 1e-3;
/// At most this many glyphs extend the beams at one step: a confused step (near-uniform scores)
/// otherwise costs 36 extensions per beam for alternatives nobody will rank.
const MAX_EXTENSIONS: usize = 6;

/// Softmaxed scores: for each time step, a probability per class.
#[derive(Debug, Clone, PartialEq)]
pub struct Posteriors {
    steps: usize,
    classes: usize,
    probs: Vec<f32>,
}

/// The best path read off one step at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct BestPath {
    /// Class indices of the glyphs read (never the blank).
    pub labels: Vec<usize>,
    /// For each glyph, its highest probability over the steps that emitted it.
    pub confidences: Vec<f32>,
}

impl Posteriors {
    /// Softmax of `logits`, `steps` rows of `classes` raw scores (a non-finite score counts as the
    /// least likely).
    pub fn from_logits(steps: usize, classes: usize, logits: &[f32]) -> Posteriors {
        assert_eq!(logits.len(), steps * classes, "logits must hold steps × classes values");
        let mut probs = logits.to_vec();
        for row in probs.chunks_exact_mut(classes.max(1)) {
            let max = row.iter().copied().filter(|v| v.is_finite()).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for v in row.iter_mut() {
                *v = if v.is_finite() && max.is_finite() { (*v - max).exp() } else { 0.0 };
                sum += *v;
            }
            if sum > 0.0 {
                row.iter_mut().for_each(|v| *v /= sum);
            } else {
                // Nothing finite: the step says nothing, which CTC spells as a certain blank.
                row.fill(0.0);
                row[BLANK] = 1.0;
            }
        }
        Posteriors { steps, classes, probs }
    }

    /// Probabilities already normalised per step (or deliberately not, see [`Posteriors::map`]).
    pub fn from_probabilities(steps: usize, classes: usize, probs: Vec<f32>) -> Posteriors {
        assert_eq!(probs.len(), steps * classes, "probabilities must hold steps × classes values");
        Posteriors { steps, classes, probs }
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    pub fn step(&self, t: usize) -> &[f32] {
        &self.probs[t * self.classes..(t + 1) * self.classes]
    }

    /// A copy in which `f(step, class)` replaces each probability; used to let a glyph borrow its
    /// confusable partners' probability.
    pub fn map(&self, f: impl Fn(&[f32], usize) -> f32) -> Posteriors {
        let mut probs = Vec::with_capacity(self.probs.len());
        for t in 0..self.steps {
            let step = self.step(t);
            probs.extend((0..self.classes).map(|k| f(step, k)));
        }
        Posteriors { steps: self.steps, classes: self.classes, probs }
    }

    /// Greedy decoding: the most likely class at each step, repeats merged, blanks dropped.
    pub fn best_path(&self) -> BestPath {
        let mut path = BestPath { labels: Vec::new(), confidences: Vec::new() };
        let mut previous = BLANK;
        for t in 0..self.steps {
            let (class, p) = self
                .step(t)
                .iter()
                .copied()
                .enumerate()
                .fold((BLANK, f32::NEG_INFINITY), |best, (k, p)| if p > best.1 { (k, p) } else { best });
            if class != BLANK {
                if class == previous {
                    let last = path.confidences.last_mut().expect("a repeat follows a glyph");
                    *last = last.max(p);
                } else {
                    path.labels.push(class);
                    path.confidences.push(p);
                }
            }
            previous = class;
        }
        path
    }

    /// CTC prefix beam search: up to `top_n` label sequences with their probabilities (each summed
    /// over every alignment the beam kept), most likely first.
    pub fn beam_search(&self, beam_width: usize, top_n: usize) -> Vec<(Vec<usize>, f64)> {
        let mut prefixes = PrefixTree::default();
        // (prefix, probability ending in a blank, probability ending in its last label)
        let mut beams: Vec<(usize, f64, f64)> = vec![(PrefixTree::EMPTY, 1.0, 0.0)];
        let mut next: Vec<(usize, f64, f64)> = Vec::new();
        // Where each prefix sits in `next` this step (usize::MAX: not yet there).
        let mut slot: Vec<usize> = Vec::new();
        let mut extensions: Vec<usize> = Vec::with_capacity(self.classes);
        for t in 0..self.steps {
            let step = self.step(t);
            extensions.clear();
            extensions.extend(1..self.classes);
            let by_probability = |a: &usize, b: &usize| step[*b].total_cmp(&step[*a]);
            if extensions.len() > MAX_EXTENSIONS {
                extensions.select_nth_unstable_by(MAX_EXTENSIONS, by_probability);
                extensions.truncate(MAX_EXTENSIONS);
            }
            extensions.sort_by(by_probability);
            let likely = extensions.iter().take(MAX_EXTENSIONS).take_while(|k| step[**k] >= MIN_EXTENSION).count();
            // The most likely glyph is always tried, so a step of near-uniform scores still moves.
            extensions.truncate(likely.max(1));

            let mut add = |prefix: usize, p_blank: f64, p_label: f64| {
                if slot.len() <= prefix {
                    slot.resize(prefix + 1, usize::MAX);
                }
                if slot[prefix] == usize::MAX {
                    slot[prefix] = next.len();
                    next.push((prefix, 0.0, 0.0));
                }
                let entry = &mut next[slot[prefix]];
                entry.1 += p_blank;
                entry.2 += p_label;
            };
            for &(prefix, p_blank, p_label) in &beams {
                let total = p_blank + p_label;
                add(prefix, total * f64::from(step[BLANK]), 0.0);
                for &k in &extensions {
                    let p = f64::from(step[k]);
                    let extended = prefixes.child(prefix, k);
                    if prefixes.last(prefix) == Some(k) {
                        // Without a blank between, a repeated class is the same glyph still showing.
                        add(prefix, 0.0, p_label * p);
                        add(extended, 0.0, p_blank * p);
                    } else {
                        add(extended, 0.0, total * p);
                    }
                }
            }
            for &(prefix, _, _) in &next {
                slot[prefix] = usize::MAX;
            }
            // Ties go to the prefix created first, so the search is deterministic.
            next.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)).then_with(|| a.0.cmp(&b.0)));
            next.truncate(beam_width.max(1));
            std::mem::swap(&mut beams, &mut next);
            next.clear();
        }
        beams.into_iter().take(top_n).map(|(prefix, b, l)| (prefixes.labels(prefix), b + l)).collect()
    }

    /// The probability of reading exactly `labels`, summed over all its alignments (the CTC
    /// forward algorithm). Zero when the steps are too few to spell it.
    pub fn probability(&self, labels: &[usize]) -> f64 {
        let Some(alpha) = self.forward(labels) else { return 0.0 };
        let last = alpha.len();
        alpha[last - 1] + if last > 1 { alpha[last - 2] } else { 0.0 }
    }

    /// For each glyph of `labels`, the highest probability it has on the single most likely
    /// alignment (Viterbi); `None` when the steps are too few to spell it.
    pub fn aligned_confidences(&self, labels: &[usize]) -> Option<Vec<f32>> {
        let states = 2 * labels.len() + 1;
        let label_at = |s: usize| if s.is_multiple_of(2) { BLANK } else { labels[s / 2] };
        // Best path score and, per step, the state each best path came from.
        let mut score = vec![0.0f64; states];
        let mut from = vec![vec![0usize; states]; self.steps];
        for (t, origins) in from.iter_mut().enumerate() {
            let step = self.step(t);
            let mut next = vec![0.0f64; states];
            for s in 0..states {
                let (best, origin) = if t == 0 {
                    (if s < 2 { 1.0 } else { 0.0 }, s)
                } else {
                    let mut best = (score[s], s);
                    if s >= 1 && score[s - 1] > best.0 {
                        best = (score[s - 1], s - 1);
                    }
                    if s >= 2 && s % 2 == 1 && label_at(s) != label_at(s - 2) && score[s - 2] > best.0 {
                        best = (score[s - 2], s - 2);
                    }
                    best
                };
                next[s] = best * f64::from(step[label_at(s)]);
                origins[s] = origin;
            }
            score = next;
        }
        let mut s = if states > 1 && score[states - 2] > score[states - 1] { states - 2 } else { states - 1 };
        if self.steps == 0 || score[s] <= 0.0 {
            return (labels.is_empty()).then(Vec::new);
        }
        let mut confidences = vec![0.0f32; labels.len()];
        for t in (0..self.steps).rev() {
            if s % 2 == 1 {
                confidences[s / 2] = confidences[s / 2].max(self.step(t)[label_at(s)]);
            }
            s = from[t][s];
        }
        Some(confidences)
    }

    /// The forward lattice's last column, or `None` if `labels` cannot be spelt in the available
    /// steps.
    fn forward(&self, labels: &[usize]) -> Option<Vec<f64>> {
        let repeats = labels.windows(2).filter(|w| w[0] == w[1]).count();
        if self.steps == 0 || labels.len() + repeats > self.steps {
            return None;
        }
        let states = 2 * labels.len() + 1;
        let label_at = |s: usize| if s.is_multiple_of(2) { BLANK } else { labels[s / 2] };
        let mut alpha = vec![0.0f64; states];
        alpha[0] = f64::from(self.step(0)[BLANK]);
        if states > 1 {
            alpha[1] = f64::from(self.step(0)[labels[0]]);
        }
        for t in 1..self.steps {
            let step = self.step(t);
            let mut next = vec![0.0f64; states];
            for s in 0..states {
                let mut a = alpha[s];
                if s >= 1 {
                    a += alpha[s - 1];
                }
                if s >= 2 && s % 2 == 1 && label_at(s) != label_at(s - 2) {
                    a += alpha[s - 2];
                }
                next[s] = a * f64::from(step[label_at(s)]);
            }
            alpha = next;
        }
        Some(alpha)
    }
}

/// Label prefixes as a tree (each node: its parent plus one label), so extending a beam is an index,
/// not a copied vector.
#[derive(Debug)]
struct PrefixTree {
    parent: Vec<usize>,
    label: Vec<usize>,
    children: HashMap<(usize, usize), usize>,
}

impl Default for PrefixTree {
    fn default() -> Self {
        PrefixTree { parent: vec![usize::MAX], label: vec![BLANK], children: HashMap::new() }
    }
}

impl PrefixTree {
    const EMPTY: usize = 0;

    fn child(&mut self, prefix: usize, label: usize) -> usize {
        *self.children.entry((prefix, label)).or_insert_with(|| {
            self.parent.push(prefix);
            self.label.push(label);
            self.parent.len() - 1
        })
    }

    fn last(&self, prefix: usize) -> Option<usize> {
        (prefix != Self::EMPTY).then(|| self.label[prefix])
    }

    fn labels(&self, mut prefix: usize) -> Vec<usize> {
        let mut labels = Vec::new();
        while prefix != Self::EMPTY {
            labels.push(self.label[prefix]);
            prefix = self.parent[prefix];
        }
        labels.reverse();
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three classes (blank, A=1, B=2); each row gives the probabilities of one step.
    fn posteriors(rows: &[[f32; 3]]) -> Posteriors {
        Posteriors::from_probabilities(rows.len(), 3, rows.iter().flatten().copied().collect())
    }

    #[test]
    fn softmax_rows_sum_to_one_and_keep_their_order() {
        let p = Posteriors::from_logits(2, 3, &[0.0, 1.0, 2.0, 5.0, f32::NAN, 5.0]);
        for t in 0..2 {
            assert!((p.step(t).iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert!(p.step(0)[2] > p.step(0)[1] && p.step(0)[1] > p.step(0)[0]);
        assert_eq!(p.step(1)[1], 0.0);
    }

    #[test]
    fn the_best_path_merges_repeats_but_not_across_a_blank() {
        let p = posteriors(&[[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.9, 0.1, 0.0], [0.3, 0.7, 0.0], [0.4, 0.0, 0.6]]);
        let path = p.best_path();
        assert_eq!(path.labels, [1, 1, 2]);
        assert_eq!(path.confidences, [0.9, 0.7, 0.6]);
    }

    #[test]
    fn the_probability_of_a_spelling_sums_all_its_alignments() {
        // Two steps: "A" is AA, A-, -A.
        let p = posteriors(&[[0.5, 0.3, 0.2], [0.4, 0.6, 0.0]]);
        let a = 0.3 * 0.6 + 0.3 * 0.4 + 0.5 * 0.6;
        assert!((p.probability(&[1]) - a).abs() < 1e-6);
        assert!((p.probability(&[]) - 0.5 * 0.4).abs() < 1e-6);
        // "AA" needs a blank between: three steps at least.
        assert_eq!(p.probability(&[1, 1]), 0.0);
        let all: f64 = [vec![], vec![1], vec![2], vec![1, 2], vec![2, 1], vec![2, 2], vec![1, 1]]
            .iter()
            .map(|l| p.probability(l))
            .sum();
        assert!((all - 1.0).abs() < 1e-6, "all spellings of two steps sum to {all}");
    }

    #[test]
    fn the_beam_finds_a_spelling_that_no_single_path_prefers() {
        // Each step prefers the blank, yet "A" over all alignments is the most likely spelling.
        let p = posteriors(&[[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]]);
        assert!(p.best_path().labels.is_empty());
        let beams = p.beam_search(8, 3);
        assert_eq!(beams[0].0, [1]);
        assert!((beams[0].1 - p.probability(&[1])).abs() < 1e-9);
        assert!(beams.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn aligned_confidences_give_each_glyph_its_best_step() {
        let p = posteriors(&[[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.9, 0.1, 0.0], [0.3, 0.0, 0.7]]);
        assert_eq!(p.aligned_confidences(&[1, 2]), Some(vec![0.9, 0.7]));
        assert_eq!(p.aligned_confidences(&[2, 2, 2]), None);
        assert_eq!(posteriors(&[]).aligned_confidences(&[]), Some(vec![]));
    }
}
