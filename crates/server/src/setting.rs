//! What every module's settings are made of: the value parsers, the type of a setting that may be unset, and the
//! error of settings that do not go together. A leaf: it imports nothing of the crate, so that each module can
//! declare its own settings beside the code that consumes them, and `config` compose them.
//!
//! Each parser turns a setting's text into its typed value, trimmed, or says what is wrong with it; clap prefixes
//! the message with the setting's environment variable, read from the argument itself, so no variable name is
//! written twice:
//!
//! ```text
//! error: UPLOAD_TTL: 'abc' is not a number of seconds
//! ```

use std::ffi::OsStr;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use url::Url;

/// A setting that may be unset, parsed by [`optional`]. Spelled apart from `Option` on purpose: clap's derive
/// gives an `Option` field no value when it is absent and refuses an empty one, while environments often set a
/// variable to nothing to leave it unset; this one always reaches its parser, and [`by_convention`] lets it be
/// left out.
pub type Unset<T> = Option<T>;

/// Completes a setting's argument by the conventions every setting follows, so that a declaration says only its
/// flag, its variable, its default, its value's name and its parser (`#[command(mut_args = setting::by_convention)]`
/// on the struct that declares it):
/// - without a default it may be left out: it defaults to the empty (unset) value, shown nowhere;
/// - a default its help states (`[default: …]`) replaces the one clap would show;
/// - a `bool` setting takes a value (`true`, `off`, …) like any other.
pub fn by_convention(arg: clap::Arg) -> clap::Arg {
    if arg.get_env().is_none() {
        return arg;
    }
    let mut arg = arg;
    if arg.get_default_values().is_empty() {
        arg = arg.default_value("").hide_default_value(true).required(false);
    }
    if arg.get_help().is_some_and(|help| help.to_string().contains("[default: ")) {
        arg = arg.hide_default_value(true);
    }
    if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
        arg = arg.action(clap::ArgAction::Set);
    }
    arg
}

/// A setting that cannot be used with the others, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    /// The error of the setting `var`.
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self { var, message: message.into() }
    }
}

/// 5 MiB, the smallest part of a multipart upload or copy.
pub const MIB5: u64 = 5 * 1024 * 1024;
/// 5 GiB, the largest object one request may upload or copy.
pub const GIB5: u64 = 5 * 1024 * 1024 * 1024;

/// Turns a setting's trimmed text into its value, or says what is wrong with it.
type Parse<T> = dyn Fn(&str) -> Result<T, String> + Send + Sync;

/// A parser of one kind of setting.
#[derive(Clone)]
pub struct Setting<T> {
    parse: Arc<Parse<T>>,
}

impl<T> std::fmt::Debug for Setting<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Setting")
    }
}

impl<T: 'static> Setting<T> {
    /// A parser of a setting of its own kind; `parse` gets the trimmed text and says what is wrong in an error.
    pub fn new(parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static) -> Self {
        Self { parse: Arc::new(parse) }
    }

    /// The value of `text`, or what is wrong with it.
    pub fn parse_text(&self, text: &str) -> Result<T, String> {
        (self.parse)(text)
    }

    /// The same parser, its value turned into another.
    pub fn map<U: 'static>(self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Setting<U> {
        Setting::new(move |text| (self.parse)(text).map(&f))
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Setting<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let name = arg.map_or_else(String::new, |arg| match arg.get_env() {
            Some(var) => var.to_string_lossy().into_owned(),
            None => format!("--{}", arg.get_long().unwrap_or_else(|| arg.get_id().as_str())),
        });
        let text = value.to_str().ok_or_else(|| "is not valid UTF-8".to_owned());
        text.and_then(|text| (self.parse)(text.trim())).map_err(|message| {
            clap::Error::raw(ErrorKind::ValueValidation, format!("{name}: {message}\n")).with_cmd(cmd)
        })
    }
}

/// `''`-quoted value followed by what is wrong with it.
pub fn invalid(value: &str, reason: impl Display) -> String {
    format!("'{value}' is invalid: {reason}")
}

/// An unset or empty value is `None`: environments often set a variable to nothing to leave it unset.
pub fn optional<T: Send + Sync + 'static>(inner: Setting<T>) -> Setting<Option<T>> {
    none_for(&[""], inner)
}

/// `None` for these words, otherwise what `inner` makes of the value.
fn none_for<T: Send + Sync + 'static>(words: &'static [&'static str], inner: Setting<T>) -> Setting<Option<T>> {
    Setting::new(move |text| if words.contains(&text) { Ok(None) } else { (inner.parse)(text).map(Some) })
}

/// One of a few names.
pub fn choice<T: Clone + Send + Sync + 'static>(choices: &'static [(&'static str, T)]) -> Setting<T> {
    Setting::new(move |text| {
        choices.iter().find(|(name, _)| *name == text).map(|(_, value)| value.clone()).ok_or_else(|| {
            let names: Vec<_> = choices.iter().map(|(name, _)| *name).collect();
            invalid(text, format!("expected one of {}", names.join(", ")))
        })
    })
}

/// A number from `min` to `max`, of `unit`s when there is one.
fn number<N>(min: N, max: N, unit: &'static str) -> Setting<N>
where
    N: std::str::FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    let of = if unit.is_empty() { String::new() } else { format!(" of {unit}") };
    let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
    Setting::new(move |text| {
        let n: N = text.parse().map_err(|_| format!("'{text}' is not a number{of}"))?;
        if n < min || n > max {
            return Err(format!("'{text}' is out of range: expected {min} to {max}{unit}"));
        }
        Ok(n)
    })
}

/// Whole seconds from `min` to `max`.
pub fn seconds(min: u64, max: u64) -> Setting<Duration> {
    number(min, max, "seconds").map(Duration::from_secs)
}

/// Whole seconds from `min` to `max`, or `0` (or nothing) for never.
pub fn interval(min: u64, max: u64) -> Setting<Option<Duration>> {
    none_for(&["", "0"], seconds(min, max))
}

/// A number of bytes from `min` to `max`.
pub fn bytes(min: u64, max: u64) -> Setting<u64> {
    number(min, max, "bytes")
}

/// A number of pixels from `min` to `max`.
pub fn pixels(min: u64, max: u64) -> Setting<u64> {
    number(min, max, "pixels")
}

/// A count from `min` to `max`.
pub fn count(min: usize, max: usize) -> Setting<usize> {
    number(min, max, "")
}

/// A whole number from `min` to `max`, for rates.
pub fn whole(min: u32, max: u32) -> Setting<u32> {
    Setting::new(move |text| {
        text.parse()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| invalid(text, format!("expected a whole number from {min} to {max}")))
    })
}

/// A TCP port; 0 lets the system choose one.
pub fn port() -> Setting<u16> {
    Setting::new(|text| text.parse().map_err(|_| format!("'{text}' is not a port number (0 to 65535)")))
}

/// `true`, `1`, `yes`, `on` or their opposites, in any case.
pub fn boolean() -> Setting<bool> {
    Setting::new(|text| match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("'{text}' is not a boolean (true or false)")),
    })
}

/// `auto` (find out), or a boolean.
pub fn auto_or_boolean() -> Setting<Option<bool>> {
    none_for(&["auto", ""], boolean())
}

/// An IP address to listen on.
pub fn ip_address() -> Setting<std::net::IpAddr> {
    Setting::new(|text| text.parse().map_err(|_| invalid(text, "expected an IP address such as 0.0.0.0")))
}

/// A cloud region name.
pub fn region() -> Setting<String> {
    Setting::new(|text| {
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(text, "expected a region name such as us-east-1"));
        }
        Ok(text.to_owned())
    })
}

/// A base URL: http or https, with a host, no query or fragment.
pub fn http_url() -> Setting<Url> {
    Setting::new(|text| {
        let url = Url::parse(text).map_err(|e| invalid(text, e))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(text, "expected an http:// or https:// URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(text, "a base URL has no query or fragment"));
        }
        Ok(url)
    })
}

/// A URL DraftStore sends signed bodies to (the confirm hook, the event receiver): http or https, with a host, no
/// fragment. Credentials and a query (a receiver's token) are allowed, and an error never shows them.
pub fn webhook_url() -> Setting<Url> {
    Setting::new(|text| {
        let url = Url::parse(text).map_err(|e| invalid("<not shown: it may hold credentials>", e))?;
        // As given, unless it holds something to hide.
        let hidden = !url.username().is_empty() || url.password().is_some() || url.query().is_some();
        let shown = if hidden { redacted(&url) } else { text.to_owned() };
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(&shown, "expected an http:// or https:// URL"));
        }
        if url.fragment().is_some() {
            return Err(invalid(&shown, "a fragment is never sent: leave it out"));
        }
        Ok(url)
    })
}

/// A URL fit to show: its credentials and query replaced by `***`.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() || shown.password().is_some() {
        // A URL with a host takes a user name and a password: neither call fails.
        let _ = shown.set_username("***");
        let _ = shown.set_password(None);
    }
    if shown.query().is_some() {
        shown.set_query(Some("***"));
    }
    shown.set_fragment(None);
    shown.to_string()
}

/// Any text, as given.
pub fn text() -> Setting<String> {
    Setting::new(|text| Ok(text.to_owned()))
}

/// Text that must not be empty.
pub fn required_text(what: &'static str) -> Setting<String> {
    Setting::new(move |text| if text.is_empty() { Err(what.to_owned()) } else { Ok(text.to_owned()) })
}

/// A secret, as given: its `Debug` is redacted and it is never shown in a message.
pub fn secret() -> Setting<secrecy::SecretString> {
    Setting::new(|text| Ok(secrecy::SecretString::from(text.to_owned())))
}

/// A file path.
pub fn path() -> Setting<std::path::PathBuf> {
    Setting::new(|text| Ok(text.into()))
}

/// A comma-separated list, empty items skipped, each parsed by `item`.
pub fn list<T: Send + Sync + 'static>(
    item: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
) -> Setting<Vec<T>> {
    Setting::new(move |text| text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(&item).collect())
}
