//! [`Live`]: a value a configuration reload can replace while requests
//! read it (`crate::reload`). A reader takes an `Arc` of the value in
//! force and keeps it for the rest of its request; a replacement affects
//! the requests that read it afterwards.

use std::sync::{Arc, RwLock};

pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Self(RwLock::new(Arc::new(value)))
    }

    /// The value in force.
    pub fn get(&self) -> Arc<T> {
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `value` in force.
    pub fn set(&self, value: T) {
        match self.0.write() {
            Ok(mut v) => *v = Arc::new(value),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(value),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Live").field(&self.get()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_keeps_the_value_it_took_and_later_readers_see_the_new_one() {
        let live = Live::new(1);
        let before = live.get();
        live.set(2);
        assert_eq!(*before, 1);
        assert_eq!(*live.get(), 2);
    }
}
