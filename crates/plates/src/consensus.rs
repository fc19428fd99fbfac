//! Several reads of one car → one answer: [`consensus`] groups reads whose spellings differ only by
//! confusable glyphs ([`crate::confusion::matching_key`]), lets each group weigh the confidence of its
//! reads, and answers the heaviest group's most trusted exact spelling. [`pool`] does the same with
//! every read's alternatives ([`Candidate`]s) weighed in too, and answers the pooled alternatives.

use crate::Candidate;

/// One read of the car, from one frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadVote {
    pub text: String,
    pub confidence: f32,
}

/// What the reads agree on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Consensus {
    /// The exact spelling with the most summed confidence inside the winning group.
    pub text: String,
    /// The winning group's share of all the reads' confidence, in `[0, 1]`.
    pub confidence: f32,
    /// Reads in the winning group.
    pub votes: usize,
}

/// The reads' answer, or `None` when there is nothing to agree on (no reads, or none with a
/// positive confidence and a non-empty text). Ties go to the group, and then the spelling, seen first.
pub fn consensus(reads: &[ReadVote]) -> Option<Consensus> {
    // (key, summed confidence, votes, spellings with their summed confidence), in first-seen order.
    type Group = (String, f64, usize, Vec<(String, f64)>);
    let mut groups: Vec<Group> = Vec::new();
    let mut total = 0.0f64;
    for read in reads {
        let weight = f64::from(read.confidence);
        let key = crate::confusion::matching_key(&read.text);
        if weight.is_nan() || weight <= 0.0 || key.is_empty() {
            continue;
        }
        total += weight;
        let text = read.text.to_ascii_uppercase();
        let group = match groups.iter_mut().position(|g| g.0 == key) {
            Some(i) => &mut groups[i],
            None => {
                groups.push((key, 0.0, 0, Vec::new()));
                groups.last_mut().expect("just pushed")
            }
        };
        group.1 += weight;
        group.2 += 1;
        match group.3.iter_mut().find(|(spelling, _)| *spelling == text) {
            Some(spelling) => spelling.1 += weight,
            None => group.3.push((text, weight)),
        }
    }
    let winner = groups.into_iter().reduce(|best, g| if g.1 > best.1 { g } else { best })?;
    let (text, _) = winner.3.into_iter().reduce(|best, s| if s.1 > best.1 { s } else { best })?;
    Some(Consensus { text, confidence: (winner.1 / total) as f32, votes: winner.2 })
}

/// Several reads of one car with their alternatives pooled: what a camera passage reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pooled {
    /// The heaviest spelling of the heaviest matching-key group: `candidates[0].text`.
    pub text: String,
    /// `text`'s confidence: the surest any single read was of exactly this spelling.
    pub confidence: f32,
    /// The winning group's share of all the reads' candidate weight, in `[0, 1]`.
    pub share: f32,
    /// Reads whose best spelling is in the winning group.
    pub votes: usize,
    /// Every spelling seen, the winning group's first, then by group weight; inside a group by
    /// summed weight. Each with the surest single read's confidence in it (not a sum: many
    /// looks at the same car are not independent evidence, so they choose, but never inflate).
    pub candidates: Vec<Candidate>,
}

/// Pools reads given as candidate lists (best first): each candidate weighs its confidence in
/// its matching-key group and its spelling, so a read whose best spelling was `WAS6660` (0.47)
/// with `WA56660` (0.94) behind it counts for `WA56660`. `None` when no read has a legible
/// candidate of positive confidence. Ties go to the group, then the spelling, seen first.
pub fn pool(reads: &[Vec<Candidate>]) -> Option<Pooled> {
    struct Spelling {
        text: String,
        sum: f64,
        max: f32,
    }
    struct Group {
        key: String,
        weight: f64,
        votes: usize,
        spellings: Vec<Spelling>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut total = 0.0f64;
    for read in reads {
        let mut voted = false;
        for candidate in read {
            let weight = f64::from(candidate.confidence);
            let key = crate::confusion::matching_key(&candidate.text);
            if weight.is_nan() || weight <= 0.0 || key.is_empty() {
                continue;
            }
            total += weight;
            let text = candidate.text.to_ascii_uppercase();
            let index = match groups.iter().position(|g| g.key == key) {
                Some(i) => i,
                None => {
                    groups.push(Group { key, weight: 0.0, votes: 0, spellings: Vec::new() });
                    groups.len() - 1
                }
            };
            let group = &mut groups[index];
            group.weight += weight;
            // The read's vote goes to the group of its best usable spelling.
            if !voted {
                group.votes += 1;
                voted = true;
            }
            match group.spellings.iter_mut().find(|s| s.text == text) {
                Some(s) => {
                    s.sum += weight;
                    s.max = s.max.max(candidate.confidence);
                }
                None => group.spellings.push(Spelling { text, sum: weight, max: candidate.confidence }),
            }
        }
    }
    // Stable sorts keep first-seen order among equals.
    groups.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    let winner = groups.first()?;
    let (share, votes) = ((winner.weight / total) as f32, winner.votes);
    let candidates: Vec<Candidate> = groups
        .into_iter()
        .flat_map(|mut g| {
            g.spellings.sort_by(|a, b| b.sum.total_cmp(&a.sum));
            g.spellings.into_iter().map(|s| Candidate { text: s.text, confidence: s.max })
        })
        .collect();
    let best = candidates.first()?;
    Some(Pooled { text: best.text.clone(), confidence: best.confidence, share, votes, candidates })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn votes(reads: &[(&str, f32)]) -> Vec<ReadVote> {
        reads.iter().map(|(text, confidence)| ReadVote { text: (*text).to_owned(), confidence: *confidence }).collect()
    }

    /// (reads, expected text, expected confidence, expected votes)
    type Row = (&'static [(&'static str, f32)], &'static str, f32, usize);

    #[test]
    fn reads_agree_as_the_table_says() {
        let table: &[Row] = &[
            (&[("ABC1234", 0.9)], "ABC1234", 1.0, 1),
            (&[("ABC1234", 0.9), ("ABC1234", 0.8), ("XYZ9876", 0.3)], "ABC1234", 0.85, 2),
            // O/0 confusions pool their weight; the exact spelling with most weight wins.
            (&[("AYO9034", 0.5), ("AYO9O34", 0.3), ("AYO9O34", 0.3), ("BBB1111", 0.9)], "AYO9O34", 1.1 / 2.0, 3),
            // One very sure read outweighs two unsure ones.
            (&[("8O1AB", 0.2), ("BO1AB", 0.2), ("XY123", 0.9)], "XY123", 0.9 / 1.3, 1),
            // Case and punctuation do not split a group; the answer is uppercase.
            (&[("abc-123", 0.5), ("ABC123", 0.4)], "ABC-123", 1.0, 2),
            // Equal weights: the group seen first.
            (&[("AAA111", 0.5), ("BBB222", 0.5)], "AAA111", 0.5, 1),
            // Worthless reads are ignored.
            (&[("", 0.9), ("JJJ777", 0.0), ("KKK888", 0.4)], "KKK888", 1.0, 1),
        ];
        for (reads, text, confidence, n) in table {
            let got = consensus(&votes(reads)).unwrap();
            assert_eq!(got.text, *text, "{reads:?}");
            assert!((got.confidence - confidence).abs() < 1e-6, "{reads:?}: {}", got.confidence);
            assert_eq!(got.votes, *n, "{reads:?}");
        }
    }

    #[test]
    fn no_usable_read_is_no_consensus() {
        assert_eq!(consensus(&[]), None);
        assert_eq!(consensus(&votes(&[("", 1.0), ("ABC", 0.0), ("XYZ", f32::NAN)])), None);
    }

    fn read(candidates: &[(&str, f32)]) -> Vec<Candidate> {
        candidates
            .iter()
            .map(|(text, confidence)| Candidate { text: (*text).to_owned(), confidence: *confidence })
            .collect()
    }

    #[test]
    fn pooled_candidates_choose_the_group_and_keep_the_surest_view_of_each_spelling() {
        // The read: the lower-scored spelling came first, all three fold to one key.
        let got = pool(&[read(&[("WAS6660", 0.47), ("WA56660", 0.94), ("WA5666O", 0.47)])]).unwrap();
        assert_eq!((got.text.as_str(), got.confidence, got.votes), ("WA56660", 0.94, 1));
        assert_eq!(got.candidates.len(), 3);

        // Two looks: the second read's alternative tips the choice, though each read's best
        // spelling is another plate.
        let got = pool(&[read(&[("AB123", 0.5), ("XY789", 0.45)]), read(&[("XY789", 0.5), ("AB123", 0.1)])]).unwrap();
        assert_eq!((got.text.as_str(), got.confidence, got.votes), ("XY789", 0.5, 1));
        assert!((got.share - 0.95 / 1.55).abs() < 1e-6, "{}", got.share);
        assert_eq!(got.candidates.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["XY789", "AB123"]);

        // Agreeing looks choose, but do not make one spelling surer than its surest view.
        let got = pool(&[read(&[("KR552TE", 0.6)]), read(&[("KR552TE", 0.7)]), read(&[("KR552TF", 0.65)])]).unwrap();
        assert_eq!((got.text.as_str(), got.confidence, got.votes), ("KR552TE", 0.7, 2));

        // The winning group's spellings come first even when another group has a surer view.
        let got = pool(&[read(&[("AAA111", 0.6)]), read(&[("AAA111", 0.6)]), read(&[("BBB222", 0.8)])]).unwrap();
        assert_eq!(
            got.candidates.iter().map(|c| (c.text.as_str(), c.confidence)).collect::<Vec<_>>(),
            [("AAA111", 0.6), ("BBB222", 0.8)]
        );

        // Case does not split a spelling; worthless candidates are ignored.
        let got = pool(&[read(&[("", 0.9), ("zh927lc", 0.5)]), read(&[("ZH927LC", 0.4), ("Q", f32::NAN)])]).unwrap();
        assert_eq!((got.text.as_str(), got.confidence, got.votes, got.share), ("ZH927LC", 0.5, 2, 1.0));
    }

    #[test]
    fn nothing_legible_pools_to_nothing() {
        assert_eq!(pool(&[]), None);
        assert_eq!(pool(&[read(&[]), read(&[("", 0.8), ("ABC", 0.0)])]), None);
    }
}
