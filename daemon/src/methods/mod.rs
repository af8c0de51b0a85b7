//! The protocol's methods: one handler file per capability, each mapping its parameters (typed
//! in `convlens_shared::methods::<capability>`) onto the engine call, and the table of them all
//! ([`table`]). `initialize`, `shutdown` and `exit` belong to the connection and are handled by
//! the server.

pub mod activations;
pub mod call;
pub mod deconv;
pub mod embed_rows;
pub mod evaluate;
pub mod explain;
pub mod filters;
pub mod folder;
pub mod history;
pub mod images;
pub mod maximize;
pub mod model;
pub mod predict;
pub mod router;
pub mod status;
pub mod watch;

use router::Router;

/// The table of every capability.
pub fn table() -> Router {
    let mut r = Router::new();
    model::register(&mut r);
    history::register(&mut r);
    predict::register(&mut r);
    explain::register(&mut r);
    evaluate::register(&mut r);
    activations::register(&mut r);
    deconv::register(&mut r);
    maximize::register(&mut r);
    filters::register(&mut r);
    folder::register(&mut r);
    images::register(&mut r);
    watch::register(&mut r);
    status::register(&mut r);
    r
}
