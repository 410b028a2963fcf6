//! The configuration reference of `docs/configuration.md`, generated from the declarations themselves: a test fails
//! when the page and the code disagree, and `UPDATE_DOCS=1 cargo test -p draftstore configuration_reference`
//! writes the page's table anew.

use clap::CommandFactory;

/// Where the generated table sits in `docs/configuration.md`.
pub const BEGIN: &str = "<!-- settings: generated from crates/server/src/config, do not edit -->";
pub const END: &str = "<!-- end of settings -->";

/// One row per environment variable: the variable, its flag, its default, the commands that read it and what it
/// means, in the order of the declarations.
pub fn table() -> String {
    let cli = super::Cli::command();
    let command = |name| cli.find_subcommand(name).unwrap_or_else(|| panic!("`{name}` is a command"));
    let (serve, clean, doctor) = (command("serve"), command("clean"), command("doctor"));
    let mut table = String::from("| Variable | Flag | Default | Commands | Meaning |\n|---|---|---|---|---|\n");
    for arg in serve.get_arguments() {
        let Some(var) = arg.get_env() else { continue };
        let var = var.to_string_lossy();
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let (meaning, default) = match help.rsplit_once(" [default: ") {
            Some((meaning, default)) => (meaning.to_owned(), default.trim_end_matches(']').to_owned()),
            None => {
                let defaults: Vec<_> = arg.get_default_values().iter().map(|v| v.to_string_lossy()).collect();
                let default = if arg.is_hide_default_value_set() || defaults.is_empty() {
                    "–".to_owned()
                } else {
                    format!("`{}`", defaults.join(","))
                };
                (help, default)
            }
        };
        let flag = arg.get_long().map_or_else(String::new, |long| format!("`--{long}`"));
        let reads = |command: &clap::Command| {
            command.get_arguments().any(|a| a.get_env().is_some_and(|e| e.to_string_lossy() == var))
        };
        let commands = match (reads(clean), reads(doctor)) {
            (true, true) => "serve, clean, doctor",
            (true, false) => "serve, clean",
            (false, true) => "serve, doctor",
            (false, false) => "serve",
        };
        let cell = |text: &str| text.replace('|', "\\|");
        table.push_str(&format!("| `{var}` | {flag} | {} | {commands} | {} |\n", cell(&default), cell(&meaning)));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_reference_is_the_declarations() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let page = std::fs::read_to_string(&path).expect("docs/configuration.md is readable");
        let (before, rest) = page.split_once(BEGIN).expect("docs/configuration.md has the BEGIN marker");
        let (written, after) = rest.split_once(END).expect("docs/configuration.md has the END marker");
        let generated = table();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, format!("{before}{BEGIN}\n{generated}{END}{after}")).expect("the page is writable");
            return;
        }
        assert_eq!(
            written.trim(),
            generated.trim(),
            "docs/configuration.md disagrees with the settings' declarations: \
             run UPDATE_DOCS=1 cargo test -p draftstore configuration_reference"
        );
    }

    #[test]
    fn every_variable_has_a_meaning_and_a_flag() {
        for line in table().lines().skip(2) {
            let cells: Vec<_> = line.split(" | ").collect();
            assert_eq!(cells.len(), 5, "{line}");
            assert!(cells[1].starts_with("`--"), "{line}");
            assert!(cells[4].len() > 10, "a setting without a meaning: {line}");
        }
    }
}
