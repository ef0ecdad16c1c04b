//! The per-thread session table.
//!
//! Sessions live in a slab; a hash map finds them by key. Each session is
//! also on one of several idle lists (one per timeout class, e.g. TCP,
//! UDP, closing TCP), ordered by last packet time: touching a session moves
//! it to the tail in O(1), and expiry pops from the head until it meets a
//! session that is still fresh. No locks: a table belongs to one thread.
//!
//! The slab grows in fixed-size chunks, so adding sessions never moves the
//! ones already held (sessions are large, and a doubling `Vec` would copy
//! every one of them at each growth). The idle-list links and times live
//! apart from the slots, in one small array: every packet relinks its
//! session, which touches two neighbours, and those reads then stay in a
//! few cache lines instead of landing in other sessions' slots.

use ahash::AHashMap;

use crate::SessionKey;

const NIL: u32 = u32::MAX;
/// Cache lines of a slot to prefetch.
const PREFETCH_LINES: usize = 4;

#[inline]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, even on an
    // address that is not mapped, and reads nothing into the program.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks the CPU to start loading the first `max_lines` cache lines of
/// `value`, which the caller will touch soon (a hint only: no effect on
/// results), e.g. a boxed part of a session whose slot was prefetched
/// earlier.
#[inline]
pub fn prefetch_value<T>(value: &T, max_lines: usize) {
    let p = (value as *const T).cast::<u8>();
    for line in 0..std::mem::size_of::<T>().div_ceil(64).min(max_lines) {
        prefetch_line(p.wrapping_add(line * 64));
    }
}

/// Slots per slab chunk (a power of two).
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

/// Handle to a session in a [`SessionTable`]; valid until it is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(u32);

#[derive(Debug)]
struct Slot<T> {
    key: SessionKey,
    value: Option<T>,
}

/// A slot's place on its idle list.
#[derive(Debug, Clone, Copy)]
struct Link {
    last_us: i64,
    prev: u32,
    next: u32,
    list: u8,
}

const UNLINKED: Link = Link {
    last_us: 0,
    prev: NIL,
    next: NIL,
    list: 0,
};

#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

/// Sessions of one packet thread, with idle lists.
#[derive(Debug)]
pub struct SessionTable<T> {
    map: AHashMap<SessionKey, u32>,
    slots: Slab<T>,
    /// Idle-list state of each slot, by slot index.
    links: Vec<Link>,
    free: Vec<u32>,
    lists: Vec<List>,
}

impl<T> SessionTable<T> {
    /// A table with `lists` idle lists (timeout classes).
    pub fn new(lists: usize) -> SessionTable<T> {
        SessionTable {
            map: AHashMap::with_capacity(CHUNK),
            slots: Slab { chunks: Vec::new() },
            links: Vec::with_capacity(CHUNK),
            free: Vec::new(),
            lists: vec![
                List {
                    head: NIL,
                    tail: NIL,
                    len: 0
                };
                lists.max(1)
            ],
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sessions on idle list `list`.
    pub fn list_len(&self, list: usize) -> usize {
        self.lists.get(list).map_or(0, |l| l.len)
    }

    /// Finds a session by key.
    pub fn find(&self, key: &SessionKey) -> Option<SessionId> {
        self.map.get(key).map(|&i| SessionId(i))
    }

    /// Finds a session by key, trying `hint` first: a handle found earlier
    /// for the same key (e.g. for a whole batch at once, so that the
    /// lookups' cache misses overlap), still used if its slot holds that
    /// key.
    pub fn find_hinted(&self, key: &SessionKey, hint: Option<SessionId>) -> Option<SessionId> {
        if let Some(id) = hint
            && let Some(slot) = self.slots.get(id.0 as usize)
            && slot.value.is_some()
            && slot.key == *key
        {
            return Some(id);
        }
        self.find(key)
    }

    /// Asks the CPU to start loading a session's state, which the caller
    /// will touch soon (a hint only: no effect on results).
    #[inline]
    pub fn prefetch(&self, id: SessionId) {
        if let Some(slot) = self.slots.get(id.0 as usize) {
            let p = (slot as *const Slot<T>).cast::<u8>();
            // The slot header, the session's counters and its first
            // vectors: the lines every packet touches.
            for line in 0..PREFETCH_LINES {
                prefetch_line(p.wrapping_add(line * 64));
            }
        }
    }

    /// Adds a session on idle list `list`. The key must not be present.
    pub fn insert(&mut self, key: SessionKey, value: T, list: usize, now_us: i64) -> SessionId {
        let slot = Slot {
            key,
            value: Some(value),
        };
        let link = Link {
            last_us: now_us,
            list: list as u8,
            ..UNLINKED
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                self.links[i as usize] = link;
                i
            }
            None => {
                self.links.push(link);
                self.slots.push(slot)
            }
        };
        self.map.insert(key, index);
        self.push_tail(index);
        SessionId(index)
    }

    /// The session's value.
    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut T> {
        self.slots.get_mut(id.0 as usize)?.value.as_mut()
    }

    /// The session's value.
    pub fn get(&self, id: SessionId) -> Option<&T> {
        self.slots.get(id.0 as usize)?.value.as_ref()
    }

    /// The session's key.
    pub fn key(&self, id: SessionId) -> Option<&SessionKey> {
        let slot = self.slots.get(id.0 as usize)?;
        slot.value.as_ref().map(|_| &slot.key)
    }

    /// Records activity at `now_us` and moves the session to the tail of
    /// idle list `list` (which may differ from its current one).
    pub fn touch(&mut self, id: SessionId, list: usize, now_us: i64) {
        let i = id.0;
        if self.slots.get(i as usize).is_none_or(|s| s.value.is_none()) {
            return;
        }
        self.unlink_raw(i);
        let l = &mut self.links[i as usize];
        l.last_us = l.last_us.max(now_us);
        l.list = list as u8;
        self.push_tail(i);
    }

    /// Removes a session, returning its key and value.
    pub fn remove(&mut self, id: SessionId) -> Option<(SessionKey, T)> {
        let i = id.0;
        let value = self.slots.get_mut(i as usize)?.value.take()?;
        // Put it back briefly so unlink sees a live slot; cheaper than
        // threading a flag through.
        self.unlink_raw(i);
        let key = self.slots[i as usize].key;
        self.map.remove(&key);
        self.free.push(i);
        Some((key, value))
    }

    /// The oldest session on idle list `list` if its last activity is
    /// before `cutoff_us`.
    pub fn oldest_before(&self, list: usize, cutoff_us: i64) -> Option<SessionId> {
        let head = self.lists.get(list)?.head;
        if head == NIL {
            return None;
        }
        (self.links[head as usize].last_us < cutoff_us).then_some(SessionId(head))
    }

    /// The oldest session on idle list `list`.
    pub fn oldest(&self, list: usize) -> Option<SessionId> {
        let head = self.lists.get(list)?.head;
        (head != NIL).then_some(SessionId(head))
    }

    /// Every live session id (in slab order).
    pub fn ids(&self) -> Vec<SessionId> {
        self.slots
            .chunks
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, _)| SessionId(i as u32))
            .collect()
    }

    fn push_tail(&mut self, i: u32) {
        let list = self.links[i as usize].list as usize;
        let tail = self.lists[list].tail;
        let l = &mut self.links[i as usize];
        l.prev = tail;
        l.next = NIL;
        if tail == NIL {
            self.lists[list].head = i;
        } else {
            self.links[tail as usize].next = i;
        }
        self.lists[list].tail = i;
        self.lists[list].len += 1;
    }

    fn unlink_raw(&mut self, i: u32) {
        let Link {
            prev, next, list, ..
        } = self.links[i as usize];
        let list = list as usize;
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
        let l = &mut self.links[i as usize];
        l.prev = NIL;
        l.next = NIL;
        self.lists[list].len -= 1;
    }
}

/// Slots in chunks of [`CHUNK`]; every chunk but the last is full.
#[derive(Debug)]
struct Slab<T> {
    chunks: Vec<Vec<Slot<T>>>,
}

impl<T> Slab<T> {
    fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |c| (self.chunks.len() - 1) * CHUNK + c.len())
    }

    /// Appends a slot, returning its index.
    fn push(&mut self, slot: Slot<T>) -> u32 {
        let index = self.len() as u32;
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(slot),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(slot);
                self.chunks.push(c);
            }
        }
        index
    }

    fn get(&self, i: usize) -> Option<&Slot<T>> {
        self.chunks.get(i >> CHUNK_BITS)?.get(i & (CHUNK - 1))
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Slot<T>> {
        self.chunks
            .get_mut(i >> CHUNK_BITS)?
            .get_mut(i & (CHUNK - 1))
    }
}

impl<T> std::ops::Index<usize> for Slab<T> {
    type Output = Slot<T>;
    fn index(&self, i: usize) -> &Slot<T> {
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

impl<T> std::ops::IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, i: usize) -> &mut Slot<T> {
        &mut self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionKind;

    fn key(n: u8) -> SessionKey {
        SessionKey::directional(SessionKind::Udp, 0, [n; 16], [0; 16], 0)
    }

    #[test]
    fn insert_find_touch_expire() {
        let mut t: SessionTable<&str> = SessionTable::new(2);
        let a = t.insert(key(1), "a", 0, 100);
        let b = t.insert(key(2), "b", 0, 200);
        let c = t.insert(key(3), "c", 1, 50);
        assert_eq!(t.find(&key(2)), Some(b));
        assert_eq!(t.oldest_before(0, 150), Some(a));
        t.touch(a, 0, 300);
        assert_eq!(t.oldest_before(0, 150), None);
        assert_eq!(t.oldest_before(0, 250), Some(b));
        assert_eq!(t.remove(b), Some((key(2), "b")));
        assert_eq!(t.find(&key(2)), None);
        assert_eq!(t.oldest(0), Some(a));
        // Moving between lists.
        t.touch(c, 0, 400);
        assert_eq!(t.list_len(1), 0);
        assert_eq!(t.list_len(0), 2);
        assert_eq!(t.oldest(0), Some(a));
        // Slots are reused.
        t.remove(a);
        let d = t.insert(key(4), "d", 1, 500);
        assert_eq!(d, a);
        assert_eq!(t.get(d), Some(&"d"));
        assert_eq!(t.len(), 2);
        assert_eq!(t.ids().len(), 2);
    }

    #[test]
    fn many_sessions_span_chunks() {
        let mut t: SessionTable<u32> = SessionTable::new(1);
        let key = |n: u32| {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&n.to_be_bytes());
            SessionKey::directional(SessionKind::Udp, 0, a, [0; 16], 0)
        };
        let n = 3 * CHUNK as u32 + 7;
        let ids: Vec<_> = (0..n)
            .map(|i| t.insert(key(i), i, 0, i64::from(i)))
            .collect();
        assert_eq!(t.len(), n as usize);
        assert_eq!(t.ids().len(), n as usize);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.find(&key(i as u32)), Some(*id));
            assert_eq!(t.get(*id), Some(&(i as u32)));
        }
        // Oldest first across chunk boundaries.
        for i in 0..n {
            let id = t.oldest(0).unwrap();
            assert_eq!(t.remove(id), Some((key(i), i)));
        }
        assert!(t.is_empty());
    }

    #[test]
    fn hints_are_checked_against_the_key() {
        let mut t: SessionTable<&str> = SessionTable::new(1);
        let a = t.insert(key(1), "a", 0, 0);
        let b = t.insert(key(2), "b", 0, 0);
        assert_eq!(t.find_hinted(&key(1), Some(a)), Some(a));
        // A hint for another key is ignored.
        assert_eq!(t.find_hinted(&key(1), Some(b)), Some(a));
        // A stale hint (session gone, slot reused) is ignored.
        t.remove(a);
        assert_eq!(t.find_hinted(&key(1), Some(a)), None);
        let c = t.insert(key(3), "c", 0, 0);
        assert_eq!(c, a);
        assert_eq!(t.find_hinted(&key(1), Some(c)), None);
        assert_eq!(t.find_hinted(&key(3), None), Some(c));
        t.prefetch(c);
        t.prefetch(SessionId(9999));
    }

    #[test]
    fn removed_handles_are_inert() {
        let mut t: SessionTable<u32> = SessionTable::new(1);
        let a = t.insert(key(1), 1, 0, 0);
        t.remove(a);
        assert!(t.get_mut(a).is_none());
        assert!(t.remove(a).is_none());
        t.touch(a, 0, 5);
        assert_eq!(t.list_len(0), 0);
    }
}
