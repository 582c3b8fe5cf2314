//! How much data each scale loads, and how it is skewed.

use crate::config::Scale;

#[derive(Debug, Clone)]
pub struct Shape {
    pub users: u32,
    pub categories: u32,
    pub tags: u32,
    pub topics: u32,
    /// All replies, including those of the hot and chain topics below.
    pub replies: u64,
    /// Reply counts of the few giant topics (topic ids 1, 2, ...).
    pub hot_topics: &'static [u32],
    /// Lengths of the reply chains (each reply answers the previous one), one
    /// topic each, right after the hot topics.
    pub chains: &'static [u32],
    /// The most replies any ordinary topic gets.
    pub max_ordinary_replies: u32,
    pub wiki_pages: u32,
    pub max_revisions: u32,
}

impl Shape {
    pub fn of(scale: Scale) -> Self {
        match scale {
            Scale::Small => Self {
                users: 200,
                categories: 8,
                tags: 30,
                topics: 400,
                replies: 12_000,
                hot_topics: &[3_000],
                chains: &[1_200],
                max_ordinary_replies: 400,
                wiki_pages: 100,
                max_revisions: 5,
            },
            Scale::Medium => Self {
                users: 1_000,
                categories: 50,
                tags: 200,
                topics: 5_000,
                replies: 100_000,
                hot_topics: &[6_000, 5_500, 5_200, 5_000],
                chains: &[1_000, 1_000],
                max_ordinary_replies: 2_000,
                wiki_pages: 500,
                max_revisions: 8,
            },
            Scale::Default => Self {
                users: 10_000,
                categories: 50,
                tags: 200,
                topics: 50_000,
                replies: 1_000_000,
                hot_topics: &[60_000, 55_000, 52_000, 50_000],
                chains: &[10_000, 2_500, 1_500, 1_000],
                max_ordinary_replies: 5_000,
                wiki_pages: 5_000,
                max_revisions: 8,
            },
            Scale::Large => Self {
                users: 50_000,
                categories: 50,
                tags: 500,
                topics: 500_000,
                replies: 10_000_000,
                hot_topics: &[120_000, 100_000, 80_000, 60_000, 55_000, 52_000, 50_000],
                chains: &[10_000, 5_000, 2_500, 1_500, 1_000],
                max_ordinary_replies: 10_000,
                wiki_pages: 20_000,
                max_revisions: 8,
            },
        }
    }

    /// Replies left for the ordinary topics once hot and chain topics have theirs.
    pub fn ordinary_replies(&self) -> u64 {
        let special: u64 = self.hot_topics.iter().chain(self.chains).map(|&n| u64::from(n)).sum();
        self.replies.saturating_sub(special)
    }

    pub fn special_topics(&self) -> u32 {
        u32::try_from(self.hot_topics.len() + self.chains.len()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scale_has_room_for_its_special_topics() {
        for scale in [Scale::Small, Scale::Medium, Scale::Default, Scale::Large] {
            let shape = Shape::of(scale);
            assert!(shape.special_topics() < shape.topics);
            assert!(shape.ordinary_replies() > 0);
            assert!(shape.chains.iter().any(|&n| n >= 1_000), "{scale:?} has a chain 1,000+ deep");
        }
    }
}
