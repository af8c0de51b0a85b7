//! The state of one piece of data asked of the daemon: not asked, on its way (with progress),
//! there, failed, or not offered by this daemon.

/// How far a long request has come.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Percent done, when the daemon knows.
    pub percentage: Option<u32>,
    /// What it is doing.
    pub message: Option<String>,
}

/// One piece of remote data.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Remote<T> {
    /// Not asked for (yet).
    #[default]
    Idle,
    /// Asked for; the answer is on its way.
    Loading(Progress),
    /// The answer.
    Ready(T),
    /// The daemon answered with an error.
    Failed(String),
    /// The daemon does not offer the method that gives it (named here).
    Unavailable(String),
}

impl<T> Remote<T> {
    /// The data, when it is there.
    pub fn ready(&self) -> Option<&T> {
        match self {
            Remote::Ready(t) => Some(t),
            _ => None,
        }
    }

    /// Whether a request is on its way.
    pub fn is_loading(&self) -> bool {
        matches!(self, Remote::Loading(_))
    }
}

/// Remote data together with the key it was asked for, so that a view asks again exactly when
/// what it wants changes (another layer, image, unit or checkpoint version).
#[derive(Clone, Debug, PartialEq)]
pub struct Fetch<K, T> {
    /// What the data is (or will be) for.
    pub key: Option<K>,
    /// The data.
    pub state: Remote<T>,
}

impl<K, T> Default for Fetch<K, T> {
    fn default() -> Self {
        Fetch {
            key: None,
            state: Remote::Idle,
        }
    }
}

impl<K: PartialEq, T> Fetch<K, T> {
    /// Whether it holds (or awaits) the data for `key`.
    pub fn is_for(&self, key: &K) -> bool {
        self.key.as_ref() == Some(key)
    }

    /// Starts waiting for the data of `key`.
    pub fn start(&mut self, key: K) {
        self.key = Some(key);
        self.state = Remote::Loading(Progress::default());
    }

    /// Asks again for `key` while keeping the data already there on screen until the answer
    /// comes (a reloaded checkpoint's tree).
    pub fn revalidate(&mut self, key: K) {
        self.key = Some(key);
        if !matches!(self.state, Remote::Ready(_)) {
            self.state = Remote::Loading(Progress::default());
        }
    }

    /// Marks `key` as not offered by the daemon.
    pub fn unavailable(&mut self, key: K, method: &str) {
        self.key = Some(key);
        self.state = Remote::Unavailable(method.to_string());
    }

    /// Forgets everything, so that the next refresh asks again.
    pub fn reset(&mut self) {
        self.key = None;
        self.state = Remote::Idle;
    }
}
