//! The app's script and style sheet, compiled into the binary and served under a path that
//! names their content's hash (`/assets/<version>/app.js`), so a tablet never mixes an old
//! page with a new script: a new build has new paths, and an old path stays cacheable for ever.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The script.
pub const APP_JS: &str = include_str!("assets/app.js");
/// The style sheet.
pub const APP_CSS: &str = include_str!("assets/app.css");

/// The first 12 hex digits of the SHA-256 of every asset.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(APP_JS.as_bytes());
        h.update(APP_CSS.as_bytes());
        hex::encode(h.finalize())[..12].to_owned()
    })
}

/// The asset `name` (`app.js`, `app.css`) of version `version`, with its content type.
pub fn get(version_asked: &str, name: &str) -> Option<(&'static str, &'static str)> {
    if version_asked != version() {
        return None;
    }
    match name {
        "app.js" => Some(("text/javascript; charset=utf-8", APP_JS)),
        "app.css" => Some(("text/css; charset=utf-8", APP_CSS)),
        _ => None,
    }
}
