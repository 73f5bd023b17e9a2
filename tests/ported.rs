//! Keeps `tests/PORTED.md`, the tally of greenlet's and gevent's test cases ported here, true
//! to the tests: every Rust test it names exists and says in its doc comment which cases it
//! ports, and every section's counts add up.

use std::collections::HashMap;
use std::path::Path;

/// One row of a section's table.
struct Row {
    cases: Vec<String>,
    status: String,
    refs: Vec<(String, String)>,
}

/// A section: one Python test file.
struct Section {
    file: String,
    /// (cases, ported, differs, n/a, pending, failing) as its header line says.
    claimed: [usize; 6],
    rows: Vec<Row>,
}

fn tests_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"))
}

/// The backticked words of `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The numbers in `line`, in order.
fn numbers(line: &str) -> Vec<usize> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

fn parse(md: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for line in md.lines() {
        if let Some(rest) = line.strip_prefix("### ") {
            let file = backticked(rest)
                .first()
                .unwrap_or_else(|| panic!("no file in {line:?}"))
                .to_string();
            sections.push(Section {
                file,
                claimed: [usize::MAX; 6],
                rows: Vec::new(),
            });
        } else if let Some(section) = sections.last_mut() {
            if line.contains(" cases: ") && line.contains(" failing.") {
                let n = numbers(line);
                assert_eq!(n.len(), 6, "counts of {}: {line:?}", section.file);
                section.claimed.copy_from_slice(&n);
            } else if line.starts_with("| `") {
                let cols: Vec<&str> = line.split(" | ").collect();
                assert!(cols.len() >= 3, "row of {}: {line:?}", section.file);
                let cases = backticked(cols[0]).iter().map(|s| s.to_string()).collect();
                let status = cols[1].trim().to_string();
                let rest = cols[2..].join(" | ");
                let refs = backticked(&rest)
                    .into_iter()
                    .filter_map(|r| r.strip_prefix("tests/"))
                    .filter_map(|r| r.split_once("::"))
                    .map(|(f, t)| (f.to_string(), t.to_string()))
                    .collect();
                section.rows.push(Row {
                    cases,
                    status,
                    refs,
                });
            }
        }
    }
    sections
}

/// The doc comment of `fn name` in `source`: the `///` lines right above it (attributes
/// between are skipped).
fn doc_of(source: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let at = lines.iter().position(|l| {
        let l = l.trim_start();
        l.starts_with(&format!("fn {name}(")) || l.starts_with(&format!("pub fn {name}("))
    })?;
    let mut doc = Vec::new();
    for l in lines[..at].iter().rev() {
        let l = l.trim_start();
        if let Some(d) = l.strip_prefix("///") {
            doc.push(d);
        } else if !l.starts_with("#[") {
            break;
        }
    }
    doc.reverse();
    Some(doc.join("\n"))
}

#[test]
fn ported_md_names_real_tests_that_say_what_they_port_and_its_counts_add_up() {
    let md = std::fs::read_to_string(tests_dir().join("PORTED.md")).expect("tests/PORTED.md");
    let sections = parse(&md);
    assert!(sections.len() > 40, "only {} sections", sections.len());
    let mut sources: HashMap<String, String> = HashMap::new();
    let mut totals = [0usize; 6];
    let mut problems = Vec::new();
    for s in &sections {
        let mut counted = [0usize; 6];
        for row in &s.rows {
            let n = row.cases.len();
            counted[0] += n;
            let status = row.status.as_str();
            if status.starts_with("ported") {
                counted[1] += n;
                if status == "ported, differs" {
                    counted[2] += n;
                }
            } else if status == "n/a" {
                counted[3] += n;
            } else if status.starts_with("pending: ") {
                counted[4] += n;
            } else if status == "failing" {
                counted[5] += n;
            } else {
                problems.push(format!("{}: unknown status {status:?}", s.file));
            }
            if !status.starts_with("ported") {
                continue;
            }
            if row.refs.is_empty() {
                problems.push(format!("{}: {:?} ported by no test", s.file, row.cases));
            }
            let mut docs = Vec::new();
            for (file, test) in &row.refs {
                let source = sources.entry(file.clone()).or_insert_with(|| {
                    std::fs::read_to_string(tests_dir().join(file)).unwrap_or_default()
                });
                match doc_of(source, test) {
                    Some(doc) => docs.push(doc),
                    None => problems.push(format!("{}: no test {file}::{test}", s.file)),
                }
            }
            for case in &row.cases {
                let named = match case.split_once('.') {
                    Some((class, method)) => {
                        docs.iter().any(|d| d.contains(class) && d.contains(method))
                    }
                    // A module-level script: the doc names the file.
                    None => docs.iter().any(|d| d.contains(&s.file)),
                };
                if !named {
                    problems.push(format!(
                        "{}: no doc comment of {:?} names {case}",
                        s.file, row.refs
                    ));
                }
            }
        }
        if counted != s.claimed {
            problems.push(format!(
                "{}: the header says {:?}, the rows count {:?}",
                s.file, s.claimed, counted
            ));
        }
        for (t, c) in totals.iter_mut().zip(counted) {
            *t += c;
        }
    }
    assert_eq!(totals[5], 0, "a ported case is failing");
    let all = md
        .lines()
        .find(|l| l.starts_with("| **all**"))
        .expect("the summary's total row");
    let claimed_all = numbers(all);
    let want = [
        totals[0], totals[1], totals[2], totals[3], totals[4], totals[5],
    ];
    if claimed_all != want {
        problems.push(format!(
            "summary total says {claimed_all:?}, the sections {want:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
