//! `docs/configuration.md` against the code, both ways, so the reference cannot go stale:
//! every documented key parses in a config file and every key the file accepts is
//! documented; every flag and `[env: …]` of every subcommand's `--help` is documented, and
//! every documented flag and variable exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use rolecall::config::FileSettings;

const BIN: &str = env!("CARGO_BIN_EXE_rolecall");
const DOC: &str = include_str!("../../docs/configuration.md");
/// A key no settings struct has, to make serde list the ones it has.
const PROBE: &str = "rolecall_docs_probe";

/// The rows of each key table in "Config file": table header (`""` for the top level,
/// `[auth]`, `[[auth.issuers]]`, …) to (key, example value).
fn documented_keys() -> BTreeMap<String, Vec<(String, String)>> {
    let section = section(DOC, "## Config file", "## ");
    let mut tables: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut table = None;
    for line in section.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            table = if heading.starts_with("Top-level") {
                Some(String::new())
            } else {
                Some(heading.trim().trim_matches('`').to_owned())
            };
            tables.entry(table.clone().unwrap()).or_default();
            continue;
        }
        let Some(table) = &table else { continue };
        let cells = cells(line);
        if cells.len() < 2 || !cells[0].starts_with('`') {
            continue;
        }
        let key = cells[0].trim_matches('`').to_owned();
        let example = cells[1].trim_matches('`').to_owned();
        tables.get_mut(table).unwrap().push((key, example));
    }
    tables
}

/// The text from the line `start` up to the next line starting with `end` (or the end).
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(&format!("\n{start}\n"))
        .unwrap_or_else(|| panic!("docs/configuration.md has no `{start}` heading"))
        + start.len()
        + 2;
    let rest = &text[from..];
    let to = rest.find(&format!("\n{end}")).unwrap_or(rest.len());
    &rest[..to]
}

/// A Markdown table row's cells, trimmed; empty for any other line.
fn cells(line: &str) -> Vec<&str> {
    let line = line.trim();
    if !line.starts_with('|') {
        return Vec::new();
    }
    line.trim_matches('|').split('|').map(str::trim).collect()
}

/// Every documented key with its example, as one config file.
fn documented_file(tables: &BTreeMap<String, Vec<(String, String)>>) -> String {
    let mut file = String::new();
    for (key, example) in &tables[""] {
        file.push_str(&format!("{key} = {example}\n"));
    }
    for (header, rows) in tables.iter().filter(|(h, _)| !h.is_empty()) {
        file.push_str(&format!("\n{header}\n"));
        for (key, example) in rows {
            file.push_str(&format!("{key} = {example}\n"));
        }
    }
    file
}

/// The fields serde expects where `text` puts an unknown key, from its error.
fn accepted_fields(text: &str) -> BTreeSet<String> {
    let error = toml::from_str::<FileSettings>(text)
        .err()
        .unwrap_or_else(|| panic!("`{PROBE}` was accepted in:\n{text}"))
        .to_string();
    let expected = error
        .split_once("expected")
        .unwrap_or_else(|| panic!("no field list in the error for:\n{text}\n{error}"))
        .1;
    let fields: BTreeSet<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(!fields.is_empty(), "{error}");
    fields
}

#[test]
fn every_documented_key_parses_in_a_config_file() {
    let tables = documented_keys();
    assert!(tables[""].len() > 10, "the top-level table was found");
    let file = documented_file(&tables);
    if let Err(error) = toml::from_str::<FileSettings>(&file) {
        panic!("the documented keys do not parse: {error}\n{file}");
    }
}

#[test]
fn every_key_a_config_file_accepts_is_documented() {
    let tables = documented_keys();
    let headers: BTreeSet<String> = tables
        .keys()
        .map(|h| h.trim_matches(|c| c == '[' || c == ']').to_owned())
        .collect();
    let mut missing = Vec::new();
    for (header, rows) in &tables {
        let path = header.trim_matches(|c| c == '[' || c == ']');
        let keys: BTreeSet<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        // Inline tables documented as dotted keys (`claims.subject`) are probed too.
        let mut prefixes: BTreeSet<&str> = BTreeSet::from([""]);
        prefixes.extend(keys.iter().filter_map(|k| Some(k.split_once('.')?.0)));
        for prefix in prefixes {
            let dotted = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}.")
            };
            let probe = format!("{header}\n{dotted}{PROBE} = 1\n");
            for field in accepted_fields(&probe) {
                let key = format!("{dotted}{field}");
                let table = if path.is_empty() {
                    field.clone()
                } else {
                    format!("{path}.{field}")
                };
                let nested = keys.iter().any(|k| k.starts_with(&format!("{key}.")));
                if !keys.contains(key.as_str()) && !headers.contains(&table) && !nested {
                    missing.push(format!("{header} {key}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "config keys missing from docs/configuration.md: {missing:?}"
    );
}

/// `rolecall <args> --help`.
fn help(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .env_remove("ROLECALL_DATABASE_URL")
        .output()
        .expect("rolecall runs");
    assert!(out.status.success(), "{args:?} --help: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The subcommands `rolecall --help` lists.
fn subcommands() -> Vec<String> {
    let top = help(&[]);
    let list = top
        .split_once("Commands:")
        .expect("a command list")
        .1
        .split("\n\n")
        .next()
        .unwrap();
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The long flags an option line of `--help` defines (`-o, --output <OUTPUT>  …`).
fn flags_in_help(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches(',').to_owned())
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// The flags the rows of a command's table start with (`` `--output <FILE>`, `-o` ``).
fn documented_flags(section: &str) -> BTreeSet<String> {
    section
        .lines()
        .filter_map(|line| {
            let cells = cells(line);
            let first = cells.first()?.strip_prefix('`')?;
            first
                .starts_with("--")
                .then(|| first.split([' ', '`']).next().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn every_flag_of_every_command_is_documented_and_every_documented_flag_exists() {
    let commands = subcommands();
    assert!(commands.contains(&"serve".to_owned()), "{commands:?}");
    let mut problems = Vec::new();
    for command in &commands {
        let heading = format!("### `rolecall {command}`");
        if !DOC.contains(&format!("\n{heading}\n")) {
            problems.push(format!("no `{heading}` section"));
            continue;
        }
        let documented = documented_flags(section(DOC, &heading, "#"));
        let actual = flags_in_help(&help(&[command]));
        for flag in actual.difference(&documented) {
            problems.push(format!("rolecall {command} {flag}: not documented"));
        }
        for flag in documented.difference(&actual) {
            problems.push(format!(
                "rolecall {command} {flag}: documented, but no such flag"
            ));
        }
    }
    for line in DOC.lines() {
        if let Some(command) = line
            .strip_prefix("### `rolecall ")
            .and_then(|r| r.strip_suffix('`'))
        {
            if !commands.iter().any(|c| c == command) {
                problems.push(format!("`rolecall {command}` is documented but no command"));
            }
        }
    }
    assert!(problems.is_empty(), "docs/configuration.md: {problems:#?}");
}

/// Every `"ROLECALL_…"` (or other) string literal in the crate's sources.
fn source_text() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).expect("readable"));
            }
        }
    }
    let mut text = String::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut text,
    );
    text
}

#[test]
fn every_environment_variable_is_documented_and_every_documented_one_is_read() {
    let mut helps = help(&[]);
    for command in subcommands() {
        helps.push_str(&help(&[&command]));
    }
    let in_help: BTreeSet<&str> = helps
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .collect();
    assert!(in_help.contains("ROLECALL_CONFIG"), "{in_help:?}");
    let table = section(DOC, "## Environment variables", "## ");
    let documented: BTreeSet<&str> = table
        .lines()
        .filter_map(|line| cells(line).first().copied())
        .filter(|cell| cell.starts_with('`'))
        .map(|cell| cell.trim_matches('`'))
        .collect();
    let mut problems = Vec::new();
    for name in in_help.difference(&documented) {
        problems.push(format!(
            "{name} (in --help) is not in the environment table"
        ));
    }
    let source = source_text();
    for name in &documented {
        if !in_help.contains(name) && !source.contains(&format!("\"{name}\"")) {
            problems.push(format!("{name} is documented but never read"));
        }
    }
    // Variables the code reads directly, not through clap, must be documented too.
    for literal in source.split("std::env::var(\"").skip(1) {
        let name = literal.split('"').next().unwrap();
        if name.starts_with("ROLECALL_")
            && !name.starts_with("ROLECALL_FUZZ")
            && !documented.contains(name)
        {
            problems.push(format!("{name} (read in src/) is not documented"));
        }
    }
    assert!(problems.is_empty(), "docs/configuration.md: {problems:#?}");
}
