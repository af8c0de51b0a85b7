//! The key map: which key does what, and the help text listing every key.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for; what it does depends on the focused pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Show or hide the key list.
    Help,
    /// Focus the next pane.
    NextPane,
    /// Focus the previous pane.
    PrevPane,
    /// Cursor up.
    Up,
    /// Cursor down.
    Down,
    /// Cursor left (collapse in the tree).
    Left,
    /// Cursor right (expand in the tree).
    Right,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// To the first item.
    Home,
    /// To the last item.
    End,
    /// Open / select.
    Enter,
    /// Close what is open (help, search, inspector).
    Back,
    /// Start a layer search.
    Search,
    /// Next search match.
    SearchNext,
    /// Previous search match.
    SearchPrev,
    /// The previous image of the folder.
    PrevImage,
    /// The next image of the folder.
    NextImage,
    /// The unit grid (with the inspector).
    ViewUnits,
    /// The overlay view.
    ViewOverlay,
    /// The filters view.
    ViewFilters,
    /// The map view.
    ViewMap,
    /// The checkpoint timeline.
    ViewTimeline,
    /// Show the previous kept checkpoint version.
    EarlierVersion,
    /// Show the next checkpoint version (the live one after the last).
    LaterVersion,
    /// The next explanation method.
    NextMethod,
    /// The previous explanation method.
    PrevMethod,
    /// The next class.
    NextClass,
    /// The previous class.
    PrevClass,
    /// Score the overlay's explanation (or `all` of them) by deletion, insertion and ROAD, and
    /// one method's by the randomization sanity check too.
    Score,
    /// Compute the unit's activation-maximization image.
    Maximize,
    /// Switch the activation-maximization preset.
    NextPreset,
    /// Open or close the inspector.
    Inspect,
    /// Ask everything again.
    Refresh,
}

/// The action of a key press (releases and repeats of other kinds are ignored).
pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            KeyCode::Char('l') => Some(Action::Refresh),
            KeyCode::Char('u') => Some(Action::PageUp),
            KeyCode::Char('d') => Some(Action::PageDown),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Tab => Action::NextPane,
        KeyCode::BackTab => Action::PrevPane,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Home,
        KeyCode::End | KeyCode::Char('G') => Action::End,
        KeyCode::Enter => Action::Enter,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('/') => Action::Search,
        KeyCode::Char('n') => Action::SearchNext,
        KeyCode::Char('N') => Action::SearchPrev,
        KeyCode::Char('[') => Action::PrevImage,
        KeyCode::Char(']') => Action::NextImage,
        KeyCode::Char('1') | KeyCode::Char('u') => Action::ViewUnits,
        KeyCode::Char('2') | KeyCode::Char('o') => Action::ViewOverlay,
        KeyCode::Char('3') | KeyCode::Char('f') => Action::ViewFilters,
        KeyCode::Char('4') | KeyCode::Char('t') => Action::ViewMap,
        KeyCode::Char('5') | KeyCode::Char('v') => Action::ViewTimeline,
        KeyCode::Char('<') => Action::EarlierVersion,
        KeyCode::Char('>') => Action::LaterVersion,
        KeyCode::Char('m') => Action::NextMethod,
        KeyCode::Char('M') => Action::PrevMethod,
        KeyCode::Char('c') => Action::NextClass,
        KeyCode::Char('C') => Action::PrevClass,
        KeyCode::Char('e') => Action::Score,
        KeyCode::Char('a') => Action::Maximize,
        KeyCode::Char('A') => Action::NextPreset,
        KeyCode::Char('i') => Action::Inspect,
        KeyCode::Char('r') => Action::Refresh,
        _ => return None,
    })
}

/// The help screen: sections of (keys, what they do). The README's key table says the same.
pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "Everywhere",
        &[
            ("?  F1", "this help"),
            ("q  Ctrl-C", "quit"),
            ("Tab  S-Tab", "next / previous pane"),
            ("1  u", "units: grid, inspector"),
            ("2  o", "overlay: explanations"),
            ("3  f", "filters (convolutions)"),
            ("4  t", "map: t-SNE of folder"),
            ("5  v", "checkpoint timeline"),
            ("[  ]", "previous / next image"),
            ("<  >", "earlier / later checkpoint"),
            ("r  Ctrl-L", "ask the daemon again"),
            ("Esc", "close search, inspector"),
        ],
    ),
    (
        "Overlay",
        &[
            ("m  M  ←→", "next / prev method, all"),
            ("c  C  ↑↓", "next / previous class"),
            ("e", "faithfulness, sanity"),
        ],
    ),
    (
        "Layers",
        &[
            ("↑↓  j k", "move (grid follows)"),
            ("→ l  ← h", "unfold / fold, parent"),
            ("Enter", "unfold, or go to units"),
            ("/", "search layer names"),
            ("n  N", "next / previous match"),
            ("g G PgUp/Dn", "first, last, page"),
        ],
    ),
    (
        "Units",
        &[
            ("↑↓←→ hjkl", "move the unit cursor"),
            ("Enter  i", "open / close inspector"),
            ("a  A", "maximize, next preset"),
        ],
    ),
    (
        "Images, filters, map",
        &[
            ("↑↓←→ hjkl", "move the cursor, image"),
            ("Enter", "map: nearest → current"),
        ],
    ),
    (
        "Timeline",
        &[
            ("↑↓←→ hjkl", "earlier / later version"),
            ("g  G", "oldest kept / live"),
        ],
    ),
];
