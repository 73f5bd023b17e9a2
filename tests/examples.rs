//! Each example, run as the user runs it, prints exactly what it should (gevent's
//! `test__examples.py` idea). The examples are the binaries cargo builds next to the tests:
//! `target/<profile>/examples/<name>` (see `util::example_binary`).

use std::process::Command;

mod util;

/// Runs the example with `args` and returns its stdout; fails if it fails or hangs.
fn run(name: &str, args: &[&str]) -> String {
    let path = util::example_binary(name);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = util::on_fresh_thread(move || {
        Command::new(path)
            .args(args)
            .output()
            .expect("run the example")
    });
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    assert!(
        out.status.success(),
        "example {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The article's gevent demo (section 1.2) prints exactly the article's output.
#[test]
fn gevent_sleep_prints_the_articles_output() {
    assert_eq!(
        run("gevent_sleep", &[]),
        "Running in foo\n\
         Explicit context to bar\n\
         Explicit context switch to foo again\n\
         Implicit context switch back to bar\n"
    );
}

/// Sleep sort prints the numbers sorted, one per line.
#[test]
fn sleep_sort_prints_sorted_numbers() {
    assert_eq!(run("sleep_sort", &[]), "1\n2\n3\n4\n5\n6\n7\n8\n");
}

/// The article's greenlet demo (section 1.1) prints 12, 56, 34, 78.
#[test]
fn greenlet_switch_prints_the_articles_output() {
    assert_eq!(run("greenlet_switch", &[]), "12\n56\n34\n78\n");
}

/// The article's producer/consumer (section 1), without its terminal colours.
#[test]
fn baozi_prints_the_articles_output() {
    let mut expected = String::from("--->starting eating baozi...\n--->starting eating baozi...\n");
    for n in 1..=5 {
        expected += &format!(
            "[c1] is eating baozi {n}\n[c2] is eating baozi {n}\n[producer] is making baozi {n}\n"
        );
    }
    assert_eq!(run("baozi", &[]), expected);
}

/// The tour runs every demo, each under a header line `== name: what it shows ==`, in order.
#[test]
fn tour_runs_every_demo_under_its_header() {
    let out = run("tour", &[]);
    let headers: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("== ") && l.ends_with(" =="))
        .collect();
    let names: Vec<&str> = headers
        .iter()
        .map(|h| h[3..].split(':').next().unwrap())
        .collect();
    for demo in ["greenlet_switch", "baozi", "gevent_sleep", "sleep_sort"] {
        assert!(names.contains(&demo), "no header for {demo} in:\n{out}");
    }
    assert!(out.contains("== greenlet_switch: two greenlets switching explicitly (article 1.1) ==\n12\n56\n34\n78\n"), "{out}");
    assert!(out.contains("== gevent_sleep: "), "{out}");
    assert!(
        out.contains("Running in foo\nExplicit context to bar\n"),
        "{out}"
    );
    assert!(out.contains("1\n2\n3\n4\n5\n6\n7\n8\n"), "{out}");
}

/// The tour can run a chosen demo alone.
#[test]
fn tour_runs_one_demo_by_name() {
    let out = run("tour", &["gevent_sleep"]);
    assert!(out.starts_with("== gevent_sleep: "), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("== ")).count(),
        1,
        "{out}"
    );
    assert!(
        out.ends_with("Implicit context switch back to bar\n"),
        "{out}"
    );
}
