//! A least-recently-used map bounded by the bytes of its values (the `lru` crate orders the
//! entries; this adds the byte accounting).

use std::hash::Hash;

use lru::LruCache;

/// An LRU map that evicts its oldest entries past `capacity` bytes.
pub struct ByteLru<K: Hash + Eq, V> {
    entries: LruCache<K, (V, u64)>,
    bytes: u64,
    capacity: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> ByteLru<K, V> {
    /// An empty map holding at most `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        ByteLru {
            entries: LruCache::unbounded(),
            bytes: 0,
            capacity,
        }
    }

    /// The value of `key`, marking it recently used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        self.entries.get(key).map(|(v, _)| v.clone())
    }

    /// Inserts `value` of `bytes` bytes, evicting the oldest entries past the capacity. A value
    /// larger than the whole capacity is not kept.
    pub fn insert(&mut self, key: K, value: V, bytes: u64) {
        if let Some((_, old)) = self.entries.pop(&key) {
            self.bytes -= old;
        }
        if bytes > self.capacity {
            return;
        }
        self.entries.put(key, (value, bytes));
        self.bytes += bytes;
        while self.bytes > self.capacity {
            match self.entries.pop_lru() {
                Some((_, (_, b))) => self.bytes -= b,
                None => break,
            }
        }
    }

    /// Drops every entry whose key fails `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let gone: Vec<K> = self
            .entries
            .iter()
            .filter(|(k, _)| !keep(k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some((_, b)) = self.entries.pop(&k) {
                self.bytes -= b;
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_past_the_capacity() {
        let mut c = ByteLru::new(10);
        c.insert("a", 1, 4);
        c.insert("b", 2, 4);
        assert_eq!(c.get(&"a"), Some(1));
        c.insert("c", 3, 4);
        assert_eq!(c.get(&"b"), None, "b was the least recently used");
        assert_eq!((c.get(&"a"), c.get(&"c"), c.bytes()), (Some(1), Some(3), 8));
        c.insert("huge", 4, 11);
        assert_eq!((c.get(&"huge"), c.len()), (None, 2));
        c.retain(|k| *k != "a");
        assert_eq!((c.len(), c.bytes()), (1, 4));
    }
}
