//! Hot retention classes. The hot tier keeps the raw readings of every tenant whose hot
//! retention is the same number of days in the same partitions, one per class and day, so that
//! a day's partition is due for the archive for all of its tenants at once and is dropped
//! whole (decision 0002). A tenant's `hot_days` is therefore rounded up to the next class;
//! the tenant service stores and answers the rounded value.

/// The hot retention classes, in days: every value from 1 to the longest retention (one hundred
/// years) rounds up to one of them. Roughly doubling, so that the days of every class in use together
/// are at most 2.5 times the longest of them, whatever the tenant count.
pub const HOT_CLASSES: [u32; 14] = [
    1, 2, 3, 7, 14, 30, 60, 90, 180, 365, 730, 1_825, 3_650, 36_500,
];

/// The class `days` of hot retention round up to; `None` above the longest class.
pub fn hot_class(days: u32) -> Option<u32> {
    HOT_CLASSES.iter().copied().find(|&class| class >= days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_up_to_the_next_class() {
        assert_eq!(hot_class(0), Some(1));
        assert_eq!(hot_class(1), Some(1));
        assert_eq!(hot_class(4), Some(7));
        assert_eq!(hot_class(30), Some(30));
        assert_eq!(hot_class(31), Some(60));
        assert_eq!(hot_class(36_500), Some(36_500));
        assert_eq!(hot_class(36_501), None);
    }

    #[test]
    fn the_days_of_all_classes_in_use_are_at_most_two_and_a_half_times_the_longest() {
        for (i, &longest) in HOT_CLASSES.iter().enumerate() {
            let days: u32 = HOT_CLASSES[..=i].iter().sum();
            assert!(days * 2 <= longest * 5, "{days} days up to {longest}");
        }
    }
}
