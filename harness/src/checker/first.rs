//! The few failing calls a verdict cites: those first in call-id order, whatever order the
//! calls are judged in. A run judges its calls as they close and the rest at the end, a shard's
//! merge keeps the first by note; keeping the smallest ids makes all of them cite the same calls.

use oc_reports::MAX_EVIDENCE;

/// At most [`MAX_EVIDENCE`] items, each of a call, those of the smallest call ids kept.
pub(crate) struct FirstById<T> {
    /// Call id and item, in call-id order.
    kept: Vec<(String, T)>,
}

impl<T> Default for FirstById<T> {
    fn default() -> Self {
        Self { kept: Vec::new() }
    }
}

impl<T> FirstById<T> {
    /// Offers the item of `call_id`; `make` builds it only when it is kept.
    pub(crate) fn offer(&mut self, call_id: &str, make: impl FnOnce() -> T) {
        let at = self.kept.partition_point(|(id, _)| id.as_str() < call_id);
        if at < MAX_EVIDENCE {
            self.kept.insert(at, (call_id.to_owned(), make()));
            self.kept.truncate(MAX_EVIDENCE);
        }
    }

    /// How many are kept.
    pub(crate) fn len(&self) -> usize {
        self.kept.len()
    }

    /// The items kept with their call ids, in call-id order.
    pub(crate) fn into_kept(self) -> impl Iterator<Item = (String, T)> {
        self.kept.into_iter()
    }

    /// The items kept, in call-id order.
    pub(crate) fn into_items(self) -> Vec<T> {
        self.kept.into_iter().map(|(_, item)| item).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_smallest_ids_in_order_whatever_order_they_are_offered_in() {
        let ids: Vec<String> = (0..100).map(|i| format!("call-{i:03}")).collect();
        let keep = |order: &mut dyn Iterator<Item = &String>| {
            let mut first = FirstById::default();
            for id in order {
                first.offer(id, || id.clone());
            }
            first.into_items()
        };
        let want: Vec<String> = ids[..MAX_EVIDENCE].to_vec();
        assert_eq!(keep(&mut ids.iter()), want);
        assert_eq!(keep(&mut ids.iter().rev()), want);
        // Built only when kept: offered after the first MAX_EVIDENCE, a larger id is not.
        let mut first = FirstById::default();
        for id in &ids {
            first.offer(id, || {
                assert!(id.as_str() < ids[MAX_EVIDENCE].as_str(), "{id} built");
                id.clone()
            });
        }
        assert_eq!(first.len(), MAX_EVIDENCE);
    }
}
