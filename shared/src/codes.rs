//! JSON-RPC 2.0 and LSP error codes, and the `data.kind` names the daemon adds to them.

/// The bytes were not JSON (or not UTF-8).
pub const PARSE_ERROR: i64 = -32700;
/// JSON that is not a JSON-RPC request or notification.
pub const INVALID_REQUEST: i64 = -32600;
/// A method the daemon does not have.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Parameters that do not fit the method.
pub const INVALID_PARAMS: i64 = -32602;
/// A failure inside the daemon that is not the request's fault.
pub const INTERNAL_ERROR: i64 = -32603;
/// The daemon is too busy (its job queue is full); try again.
pub const SERVER_BUSY: i64 = -32000;
/// A request sent before `initialize` (LSP's ServerNotInitialized).
pub const SERVER_NOT_INITIALIZED: i64 = -32002;
/// A well-formed request whose work failed (LSP's RequestFailed): an unknown layer, a corrupt
/// weight file; `data.kind` says which (the engine's `Error::kind`).
pub const REQUEST_FAILED: i64 = -32803;
/// The request was cancelled with `$/cancelRequest` (LSP's RequestCancelled).
pub const REQUEST_CANCELLED: i64 = -32800;
/// The model was reloaded or unloaded while the request waited (LSP's ContentModified).
pub const CONTENT_MODIFIED: i64 = -32801;

/// `data.kind` values that do not come from the engine.
pub mod kind {
    /// Bytes that are not JSON.
    pub const PARSE: &str = "parse";
    /// JSON that is not a JSON-RPC message.
    pub const INVALID_REQUEST: &str = "invalidRequest";
    /// An unknown method.
    pub const METHOD_NOT_FOUND: &str = "methodNotFound";
    /// Parameters that do not fit the method.
    pub const INVALID_PARAMS: &str = "invalidParams";
    /// A frame whose header cannot be read or whose length is over the limit.
    pub const FRAME: &str = "frame";
    /// A modelId the daemon does not know.
    pub const UNKNOWN_MODEL: &str = "unknownModel";
    /// The job queue is full.
    pub const BUSY: &str = "busy";
    /// A request before `initialize`.
    pub const NOT_INITIALIZED: &str = "notInitialized";
    /// A request after `shutdown`.
    pub const SHUTTING_DOWN: &str = "shuttingDown";
    /// Cancelled by `$/cancelRequest`.
    pub const CANCELLED: &str = "cancelled";
    /// The model does not fit in the memory budget.
    pub const MEMORY_BUDGET: &str = "memoryBudget";
    /// A watch path that is neither a folder nor a file.
    pub const WATCH: &str = "watch";
    /// A failure inside the daemon.
    pub const INTERNAL: &str = "internal";
}
