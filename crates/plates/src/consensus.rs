//! Several reads of one car → one answer: [`consensus`] groups reads whose spellings differ only by
//! confusable glyphs ([`crate::confusion::matching_key`]), lets each group weigh the confidence of its
//! reads, and answers the heaviest group's most trusted exact spelling.

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
}
