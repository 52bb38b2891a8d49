//! The command line's one grammar: every command and option of `bpfgen-fast`,
//! spelled like bpftool where bpftool has the command (options anywhere on
//! the line, `-L`, `name NAME`). The native executable (`cli/`) and the
//! Python facade (`_core.parse_cli`, for the commands that need Python
//! libraries) both take their [`Request`] from [`parse`], so there is no
//! second grammar to drift.

use crate::generate::Compat;
use crate::json::py_repr;

pub const USAGE: &str = "\
usage: bpfgen-fast [--debug] COMMAND ...
  gen skeleton -L OBJ [name NAME] [-o FILE] [HOST] [AUTOLOAD]
  gen skeleton -L -S -k KEY.pem -i CERT OBJ [name NAME] [-o FILE] [HOST] [AUTOLOAD]
      (signed, as bpftool 7.8.0: RSA, ECDSA P-256/P-384 (deterministic) or
       ML-DSA-44/65/87 key, PEM, or a 'pkcs11:' URI of a key in a token;
       X.509 cert with Subject Key Identifier;
       -S implies -L and --compat bpftool-7.8)
  gen skeleton -L -S --signature SIG.der -i CERT OBJ [name NAME] [-o FILE] [HOST] [AUTOLOAD]
      (signed with a detached CMS signature (DER) made elsewhere over the bytes
       of gen signing-payload; checked against CERT before it is embedded)
  gen signing-payload OBJ [name NAME] [-o FILE] [HOST] [AUTOLOAD]
      (the bytes the kernel verifies: the signed loader's instructions)
  gen loader OBJ [name NAME] -o PREFIX [HOST] [AUTOLOAD]
  inspect OBJ [--json]
  explain OBJ|PREFIX [--json] [--disasm] [HOST] [AUTOLOAD]
  run OBJ [name NAME] [--log-level N] [--json] [AUTOLOAD]     (root)
  batch OBJ... [--from FILE] --out-dir DIR [-j N] [--format lskel|blobs] [HOST]
      [--attach-target PROG=FUNC]
  batch -S -k KEY.pem -i CERT OBJ... [--from FILE] --out-dir DIR [-j N] [HOST]
      (signed light skeletons, the key loaded once)
  verify HEADER --cert CERT
      (a signed light skeleton, bpftool's or ours: its signature, exclusive-program
       hash and the loader's data hash, checked offline)
HOST (default: this machine's, as libbpf reads them):
  --page-size N --possible-cpus N --kernel-version X.Y.Z
  --kconfig-file FILE --kallsyms-file FILE
  --kernel-btf FILE (struct_ops layouts; default /sys/kernel/btf/vmlinux)
  --compat bpftool-7.5|bpftool-7.8 (header text of that bpftool; default 7.5)
AUTOLOAD: --no-autoload PROG / --autoload PROG (repeatable)
  --attach-target PROG=FUNC (repeatable): the kernel function a bare SEC(\"fentry\"),
      SEC(\"lsm\"), ... program attaches to, spelt as in a section name (batch: every
      object with PROG)
";

/// The `--compat` spellings, in the order the messages list them.
pub const COMPAT_CHOICES: [&str; 2] = ["bpftool-7.5", "bpftool-7.8"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    GenSkeleton,
    GenLoader,
    GenSigningPayload,
    Inspect,
    Explain,
    Run,
    Batch,
    Verify,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::GenSkeleton => "gen skeleton",
            Command::GenLoader => "gen loader",
            Command::GenSigningPayload => "gen signing-payload",
            Command::Inspect => "inspect",
            Command::Explain => "explain",
            Command::Run => "run",
            Command::Batch => "batch",
            Command::Verify => "verify",
        }
    }
}

/// A command line that is not valid. `show_usage`: print the usage text
/// after the message (always for option errors, as the facade did; for a
/// command's own checks only when there is no message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    pub show_usage: bool,
}

impl UsageError {
    fn options(message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            show_usage: true,
        }
    }
    fn command(message: impl Into<String>) -> UsageError {
        let message = message.into();
        let show_usage = message.is_empty();
        UsageError { message, show_usage }
    }
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    /// The object (or, for `explain`, a `gen loader` PREFIX) and `name NAME`;
    /// `batch` has `objects` instead.
    pub object: Option<String>,
    pub name: Option<String>,
    pub objects: Vec<String>,
    pub output: Option<String>,
    pub use_loader: bool,
    pub debug: bool,
    pub json: bool,
    pub page_size: Option<u32>,
    pub possible_cpus: Option<u32>,
    /// `--kernel-version X.Y.Z` as `KERNEL_VERSION(X, Y, Z)` (patch capped at 255).
    pub kernel_version: Option<u32>,
    pub kconfig_file: Option<String>,
    pub kallsyms_file: Option<String>,
    pub kernel_btf: Option<String>,
    pub compat: Option<String>,
    /// `--autoload PROG` (true) / `--no-autoload PROG` (false), in order.
    pub autoload: Vec<(String, bool)>,
    /// `--attach-target PROG=FUNC`, in order.
    pub attach_targets: Vec<(String, String)>,
    pub log_level: u32,
    pub disasm: bool,
    pub jobs: Option<u32>,
    pub from_file: Option<String>,
    pub out_dir: Option<String>,
    /// `batch --format`: "lskel" (default) or "blobs".
    pub format: Option<String>,
    pub sign: bool,
    pub sign_key: Option<String>,
    pub sign_cert: Option<String>,
    /// `--signature SIG.der`: a detached signature made elsewhere (with `-S -i CERT`).
    pub signature: Option<String>,
    /// `verify --cert CERT`.
    pub cert: Option<String>,
}

impl Request {
    fn empty(command: Command) -> Request {
        Request {
            command,
            object: None,
            name: None,
            objects: Vec::new(),
            output: None,
            use_loader: false,
            debug: false,
            json: false,
            page_size: None,
            possible_cpus: None,
            kernel_version: None,
            kconfig_file: None,
            kallsyms_file: None,
            kernel_btf: None,
            compat: None,
            autoload: Vec::new(),
            attach_targets: Vec::new(),
            log_level: 0,
            disasm: false,
            jobs: None,
            from_file: None,
            out_dir: None,
            format: None,
            sign: false,
            sign_key: None,
            sign_cert: None,
            signature: None,
            cert: None,
        }
    }

    /// The header style asked for (`--compat`, validated by [`parse`]).
    pub fn compat(&self) -> Compat {
        self.compat.as_deref().and_then(Compat::parse).unwrap_or_default()
    }
}

/// Python's `int(text, 0)`: optional sign, `0x`/`0o`/`0b` prefixes,
/// underscores between digits, no leading zeros in decimal.
fn python_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = t.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ => (10, lower.as_str()),
    };
    let digits = digits.strip_prefix('_').filter(|_| radix != 10).unwrap_or(digits);
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if radix == 10 && clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0') {
        return None;
    }
    let value = i64::from_str_radix(&clean, radix).ok()?;
    Some(if negative { -value } else { value })
}

fn positive(key: &str, value: &str) -> Result<u32, UsageError> {
    let n = python_int(value)
        .ok_or_else(|| UsageError::options(format!("option {key} needs a number, got {}", py_repr(value))))?;
    if n <= 0 {
        return Err(UsageError::options(format!("option {key} must be positive")));
    }
    u32::try_from(n).map_err(|_| UsageError::options(format!("option {key} is too large")))
}

/// `X.Y.Z` as libbpf's `KERNEL_VERSION(X, Y, Z)`, the patch level capped at 255.
fn kernel_version(text: &str) -> Result<u32, UsageError> {
    crate::host::parse_kernel_version(text).ok_or_else(|| {
        UsageError::options(format!(
            "option --kernel-version must look like 6.12.3, got {}",
            py_repr(text)
        ))
    })
}

/// `OBJ [name NAME]`, as bpftool spells it.
fn object_and_name(words: &[String], req: &mut Request) -> Result<(), UsageError> {
    let (obj, rest) = words
        .split_first()
        .ok_or_else(|| UsageError::command("missing object file"))?;
    req.object = Some(obj.clone());
    match rest {
        [] => Ok(()),
        [kw, name] if kw == "name" => {
            req.name = Some(name.clone());
            Ok(())
        }
        _ => Err(UsageError::command(format!("unexpected arguments: {}", rest.join(" ")))),
    }
}

/// Parses a whole command line (without the program name).
pub fn parse<S: AsRef<str>>(argv: &[S]) -> Result<Request, UsageError> {
    // Options first, anywhere on the line; the command and operands are what remains.
    let mut req = Request::empty(Command::Inspect);
    let mut words: Vec<String> = Vec::new();
    let mut it = argv.iter().map(AsRef::as_ref);
    while let Some(mut word) = it.next() {
        if word == "-j" && words.first().map(String::as_str) == Some("batch") {
            word = "--jobs"; // batch -j N: jobs, as in make (elsewhere -j is --json)
        }
        match word {
            "-L" | "--use-loader" => req.use_loader = true,
            "--debug" | "-d" => req.debug = true,
            "--json" | "-j" => req.json = true,
            "--disasm" => req.disasm = true,
            "-S" | "--sign" => req.sign = true,
            "-h" | "--help" => return Err(UsageError::options("")),
            _ => {
                let (key, inline) = match word.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (word, None),
                };
                if is_value_option(key) {
                    let value = match inline.filter(|v| !v.is_empty()) {
                        Some(v) => v,
                        None => it
                            .next()
                            .ok_or_else(|| UsageError::options(format!("option {key} needs a value")))?,
                    };
                    set_value(&mut req, key, value)?;
                } else if word.starts_with('-') && word != "-" {
                    return Err(UsageError::options(format!("unknown option {word}")));
                } else {
                    words.push(word.to_string());
                }
            }
        }
    }
    if req.sign {
        req.use_loader = true; // bpftool: -S implies -L
    }
    check_signing(&req)?;
    command(req, &words)
}

fn is_value_option(key: &str) -> bool {
    matches!(
        key,
        "-o" | "--output"
            | "--page-size"
            | "--possible-cpus"
            | "--kernel-version"
            | "--kconfig-file"
            | "--kallsyms-file"
            | "--kernel-btf"
            | "--compat"
            | "--autoload"
            | "--no-autoload"
            | "--attach-target"
            | "--log-level"
            | "--jobs"
            | "--from"
            | "--out-dir"
            | "--format"
            | "-k"
            | "-i"
            | "--cert"
            | "--signature"
    )
}

fn set_value(req: &mut Request, key: &str, value: &str) -> Result<(), UsageError> {
    let v = Some(value.to_string());
    match key {
        "-o" | "--output" => req.output = v,
        "--page-size" => req.page_size = Some(positive(key, value)?),
        "--possible-cpus" => req.possible_cpus = Some(positive(key, value)?),
        "--jobs" => req.jobs = Some(positive(key, value)?),
        "--kernel-version" => req.kernel_version = Some(kernel_version(value)?),
        "--kconfig-file" => req.kconfig_file = v,
        "--kallsyms-file" => req.kallsyms_file = v,
        "--kernel-btf" => req.kernel_btf = v,
        "--compat" => {
            if !COMPAT_CHOICES.contains(&value) {
                return Err(UsageError::options(format!(
                    "option --compat takes one of {}, got {}",
                    COMPAT_CHOICES.join(", "),
                    py_repr(value)
                )));
            }
            req.compat = v;
        }
        "--autoload" => req.autoload.push((value.to_string(), true)),
        "--no-autoload" => req.autoload.push((value.to_string(), false)),
        "--attach-target" => match value.split_once('=') {
            // batch tracks which targets applied in a 64-bit mask
            Some(_) if req.attach_targets.len() == 64 => {
                return Err(UsageError::options("at most 64 --attach-target options"));
            }
            Some((prog, func)) if !prog.is_empty() && !func.is_empty() => {
                req.attach_targets.push((prog.to_string(), func.to_string()))
            }
            _ => {
                return Err(UsageError::options(format!(
                    "option --attach-target takes PROG=FUNC, got {}",
                    py_repr(value)
                )));
            }
        },
        "--log-level" => {
            let n = python_int(value).ok_or_else(|| {
                UsageError::command(format!("option --log-level needs a number, got {}", py_repr(value)))
            })?;
            if n < 0 {
                return Err(UsageError::command("option --log-level must not be negative"));
            }
            req.log_level = u32::try_from(n).unwrap_or(u32::MAX);
        }
        "--from" => req.from_file = v,
        "--out-dir" => req.out_dir = v,
        "--format" => req.format = v,
        "-k" => req.sign_key = v,
        "-i" => req.sign_cert = v,
        "--cert" => req.cert = v,
        "--signature" => req.signature = v,
        _ => unreachable!("is_value_option and set_value list the same options"),
    }
    Ok(())
}

/// bpftool 7.8.0's signing checks (main.c, for every command), with its messages.
fn check_signing(req: &Request) -> Result<(), UsageError> {
    let keyed = req.sign_key.is_some() || req.sign_cert.is_some() || req.signature.is_some();
    if req.sign && req.signature.is_some() {
        if req.sign_key.is_some() {
            return Err(UsageError::options(
                "-k <private_key> and --signature exclude each other: sign here, or embed a signature made elsewhere",
            ));
        }
        if req.sign_cert.is_none() {
            return Err(UsageError::options(
                "-i <identity_x509_cert> must be supplied with --signature (the signature is checked against it)",
            ));
        }
    } else if req.sign && (req.sign_key.is_none() || req.sign_cert.is_none()) {
        return Err(UsageError::options(
            "-i <identity_x509_cert> and -k <private_key> must be supplied with -S for signing",
        ));
    }
    if !req.sign && keyed {
        return Err(UsageError::options(
            "--sign (or -S) must be explicitly passed with -i <identity_x509_cert> and -k <private_key> to sign the programs",
        ));
    }
    if req.sign && req.compat.as_deref() == Some("bpftool-7.5") {
        return Err(UsageError::options(
            "-S (signing) needs --compat bpftool-7.8: bpftool 7.5.0 has no -S",
        ));
    }
    Ok(())
}

/// The command and its own checks, in the order the facade made them.
fn command(mut req: Request, words: &[String]) -> Result<Request, UsageError> {
    let two: Vec<&str> = words.iter().take(2).map(String::as_str).collect();
    if req.sign && two[..] != ["gen", "skeleton"] && two.first() != Some(&"batch") {
        return Err(UsageError::command(
            "-S (signing) applies to gen skeleton and batch only",
        ));
    }
    let (cmd, rest) = match two[..] {
        ["gen", "loader"] => (Command::GenLoader, &words[2..]),
        ["gen", "signing-payload"] => (Command::GenSigningPayload, &words[2..]),
        ["gen", "skeleton"] => (Command::GenSkeleton, &words[2..]),
        ["inspect", ..] => (Command::Inspect, &words[1..]),
        ["explain", ..] => (Command::Explain, &words[1..]),
        ["run", ..] => (Command::Run, &words[1..]),
        ["batch", ..] => (Command::Batch, &words[1..]),
        ["verify", ..] => (Command::Verify, &words[1..]),
        [] => return Err(UsageError::command("")),
        _ => return Err(UsageError::command("unknown command")),
    };
    req.command = cmd;
    if req.cert.is_some() && cmd != Command::Verify {
        return Err(UsageError::command(
            "--cert applies to verify only (signing takes -i CERT)",
        ));
    }
    match cmd {
        Command::GenLoader => {
            if req.output.is_none() {
                return Err(UsageError::command("gen loader needs -o PREFIX"));
            }
            object_and_name(rest, &mut req)?;
        }
        Command::GenSkeleton => {
            if !req.use_loader {
                return Err(UsageError::command("only light skeletons (-L) are supported"));
            }
            object_and_name(rest, &mut req)?;
        }
        Command::GenSigningPayload => {
            if req.compat.as_deref() == Some("bpftool-7.5") {
                return Err(UsageError::command(
                    "gen signing-payload is the loader of bpftool 7.8.0's -S: not with --compat bpftool-7.5",
                ));
            }
            object_and_name(rest, &mut req)?;
        }
        Command::Inspect | Command::Explain | Command::Run => object_and_name(rest, &mut req)?,
        Command::Verify => {
            if req.cert.is_none() {
                return Err(UsageError::command("verify needs --cert CERT"));
            }
            match rest {
                [header] => req.object = Some(header.clone()),
                [] => return Err(UsageError::command("verify needs a HEADER")),
                _ => {
                    return Err(UsageError::command(format!(
                        "unexpected arguments: {}",
                        rest[1..].join(" ")
                    )));
                }
            }
        }
        Command::Batch => {
            if req.out_dir.is_none() {
                return Err(UsageError::command("batch needs --out-dir DIR"));
            }
            if let Some(f) = req.format.as_deref().filter(|f| !matches!(*f, "lskel" | "blobs")) {
                return Err(UsageError::command(format!(
                    "--format must be lskel or blobs, got {}",
                    py_repr(f)
                )));
            }
            if req.sign && req.signature.is_some() {
                return Err(UsageError::command(
                    "--signature embeds the signature of one object: not with batch (sign with -k)",
                ));
            }
            if req.sign && req.format.as_deref() == Some("blobs") {
                return Err(UsageError::command(
                    "batch -S writes signed light skeletons: not with --format blobs",
                ));
            }
            req.objects = rest.to_vec();
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Request, UsageError> {
        parse(&line.split_whitespace().collect::<Vec<_>>())
    }

    #[test]
    fn bpftool_spelling() {
        let r = p("gen skeleton x.bpf.o name foo -L -o out.h").unwrap();
        assert_eq!(r.command, Command::GenSkeleton);
        assert_eq!((r.object.as_deref(), r.name.as_deref()), (Some("x.bpf.o"), Some("foo")));
        assert_eq!(r.output.as_deref(), Some("out.h"));
        assert_eq!(
            p("gen skeleton x.o").unwrap_err().message,
            "only light skeletons (-L) are supported"
        );
    }

    #[test]
    fn batch_jobs_and_json() {
        let r = p("batch -j 3 a.o b.o --out-dir d").unwrap();
        assert_eq!((r.jobs, r.objects.len()), (Some(3), 2));
        assert!(p("inspect -j a.o").unwrap().json);
        assert_eq!(p("batch a.o").unwrap_err().message, "batch needs --out-dir DIR");
    }

    #[test]
    fn option_errors_show_usage() {
        let e = p("inspect a.o --page-size 0").unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.show_usage),
            ("option --page-size must be positive", true)
        );
        let e = p("inspect a.o --page-size x").unwrap_err();
        assert_eq!(e.message, "option --page-size needs a number, got 'x'");
        assert_eq!(p("inspect a.o --page-size=0x1000").unwrap().page_size, Some(4096));
        let e = p("frobnicate").unwrap_err();
        assert_eq!((e.message.as_str(), e.show_usage), ("unknown command", false));
        assert!(p("").unwrap_err().show_usage);
        assert_eq!(p("inspect --bogus").unwrap_err().message, "unknown option --bogus");
    }

    #[test]
    fn verify_command() {
        let r = p("verify x.lskel.h --cert c.pem").unwrap();
        assert_eq!(r.command, Command::Verify);
        assert_eq!(
            (r.object.as_deref(), r.cert.as_deref()),
            (Some("x.lskel.h"), Some("c.pem"))
        );
        assert_eq!(p("verify x.h").unwrap_err().message, "verify needs --cert CERT");
        assert_eq!(p("verify --cert c.pem").unwrap_err().message, "verify needs a HEADER");
        assert_eq!(
            p("verify a.h b.h --cert c").unwrap_err().message,
            "unexpected arguments: b.h"
        );
        assert_eq!(
            p("inspect a.o --cert c").unwrap_err().message,
            "--cert applies to verify only (signing takes -i CERT)"
        );
    }

    #[test]
    fn detached_signatures() {
        let r = p("gen skeleton -S --signature s.der -i c.pem x.o").unwrap();
        assert_eq!((r.sign, r.use_loader), (true, true));
        assert_eq!(r.signature.as_deref(), Some("s.der"));
        assert!(
            p("gen skeleton -S --signature s.der -k k.pem -i c.pem x.o")
                .unwrap_err()
                .message
                .starts_with("-k <private_key> and --signature exclude each other")
        );
        assert!(
            p("gen skeleton -S --signature s.der x.o")
                .unwrap_err()
                .message
                .starts_with("-i <identity_x509_cert> must be supplied with --signature")
        );
        assert!(
            p("gen skeleton -L --signature s.der -i c.pem x.o")
                .unwrap_err()
                .message
                .starts_with("--sign (or -S) must be explicitly passed")
        );
        let r = p("batch -S -k k.pem -i c.pem a.o b.o --out-dir d").unwrap();
        assert_eq!((r.command, r.sign, r.objects.len()), (Command::Batch, true, 2));
        assert!(p("batch -S -i c.pem --signature s.der a.o --out-dir d").is_err());
        assert!(p("batch -S -k k.pem -i c.pem a.o --out-dir d --format blobs").is_err());
        let r = p("gen signing-payload x.o name y -o p.bin").unwrap();
        assert_eq!(r.command, Command::GenSigningPayload);
        assert_eq!((r.name.as_deref(), r.output.as_deref()), (Some("y"), Some("p.bin")));
        assert!(p("gen signing-payload x.o --compat bpftool-7.5").is_err());
    }

    #[test]
    fn python_ints() {
        assert_eq!(python_int("0x10"), Some(16));
        assert_eq!(python_int(" 1_000 "), Some(1000));
        assert_eq!(python_int("010"), None);
        assert_eq!(python_int("00"), Some(0));
        assert_eq!(python_int("-3"), Some(-3));
        assert_eq!(python_int("0x_1f"), Some(31));
        assert_eq!(python_int("1__0"), None);
    }
}
