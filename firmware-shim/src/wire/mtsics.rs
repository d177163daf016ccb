//! MT-SICS level 0/1 commands and responses (Mettler Toledo Standard Interface Command Set).
//!
//! Parses and formats single lines, without their CR LF (a [`super::framer::LineFramer`] cuts
//! them). Weight values are fixed-point [`Weight`]s and the weight field is 10 characters,
//! right-aligned. This module knows the grammar only: it must not decide what a scale does
//! (that is [`crate::responder`]) and must not allocate.

use core::fmt;

use super::{BufferFull, ByteWriter, DecimalError, Unit, Weight};

/// Width of the right-aligned weight field in weight responses.
pub const WEIGHT_FIELD_WIDTH: usize = 10;

/// A host-to-scale command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `S`: stable net weight.
    Stable,
    /// `SI`: weight now, stability ignored.
    Immediate,
    /// `SIR`: `SI` repeated until cancelled.
    ImmediateRepeat,
    /// `Z`: zero once stable.
    Zero,
    /// `ZI`: zero immediately.
    ZeroImmediate,
    /// `T`: tare once stable.
    Tare,
    /// `TI`: tare immediately.
    TareImmediate,
    /// `TA`: query the tare (`None`) or preset it.
    TareValue(Option<Weight>),
    /// `TAC`: clear the tare.
    TareClear,
    /// `@`: reset (cancels repeats, clears the tare, does not zero).
    Reset,
    /// `I0` … `I4`: information queries (0 = command list, 1 = level, 2 = device data,
    /// 3 = software version, 4 = serial number).
    Info(u8),
    /// Any other well-formed command; a scale answers `ES`.
    Other {
        /// Command name.
        id: &'a str,
        /// Everything after the first space, unparsed.
        args: &'a str,
    },
}

/// Why a command line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// The line was empty.
    Empty,
    /// The line contained a byte outside printable ASCII.
    NotPrintable(u8),
    /// A known command got arguments it does not take.
    UnexpectedArgument,
    /// `TA` got a preset that is not `<decimal> <unit>`.
    BadTarePreset,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty command line"),
            Self::NotPrintable(b) => write!(f, "byte 0x{b:02x} is not printable ASCII"),
            Self::UnexpectedArgument => f.write_str("command takes no argument"),
            Self::BadTarePreset => f.write_str("tare preset is not '<value> <unit>'"),
        }
    }
}

fn printable(line: &[u8]) -> Result<&str, u8> {
    if let Some(&b) = line.iter().find(|b| !(0x20..0x7F).contains(*b)) {
        return Err(b);
    }
    core::str::from_utf8(line).map_err(|_| 0)
}

/// Parses one command line (without CR LF). Surrounding spaces are ignored.
pub fn parse_command(line: &[u8]) -> Result<Command<'_>, CommandError> {
    let text = printable(line)
        .map_err(CommandError::NotPrintable)?
        .trim_matches(' ');
    if text.is_empty() {
        return Err(CommandError::Empty);
    }
    let (id, args) = match text.find(' ') {
        Some(i) => (&text[..i], text[i + 1..].trim_matches(' ')),
        None => (text, ""),
    };
    let no_args = |c: Command<'static>| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(CommandError::UnexpectedArgument)
        }
    };
    match id {
        "S" => no_args(Command::Stable),
        "SI" => no_args(Command::Immediate),
        "SIR" => no_args(Command::ImmediateRepeat),
        "Z" => no_args(Command::Zero),
        "ZI" => no_args(Command::ZeroImmediate),
        "T" => no_args(Command::Tare),
        "TI" => no_args(Command::TareImmediate),
        "TAC" => no_args(Command::TareClear),
        "@" => no_args(Command::Reset),
        "I0" => no_args(Command::Info(0)),
        "I1" => no_args(Command::Info(1)),
        "I2" => no_args(Command::Info(2)),
        "I3" => no_args(Command::Info(3)),
        "I4" => no_args(Command::Info(4)),
        "TA" if args.is_empty() => Ok(Command::TareValue(None)),
        "TA" => {
            let mut tokens = Tokens::new(args);
            let (Some(Ok(value)), Some(Ok(unit)), None) =
                (tokens.next(), tokens.next(), tokens.next())
            else {
                return Err(CommandError::BadTarePreset);
            };
            let (value, decimals) =
                Weight::parse_decimal(value.as_bytes()).map_err(|_| CommandError::BadTarePreset)?;
            let unit = Unit::parse(unit.as_bytes()).ok_or(CommandError::BadTarePreset)?;
            Ok(Command::TareValue(Some(Weight::new(value, decimals, unit))))
        }
        _ => Ok(Command::Other { id, args }),
    }
}

impl Command<'_> {
    /// The command name as sent.
    pub fn id(&self) -> &str {
        match self {
            Command::Stable => "S",
            Command::Immediate => "SI",
            Command::ImmediateRepeat => "SIR",
            Command::Zero => "Z",
            Command::ZeroImmediate => "ZI",
            Command::Tare => "T",
            Command::TareImmediate => "TI",
            Command::TareValue(_) => "TA",
            Command::TareClear => "TAC",
            Command::Reset => "@",
            Command::Info(0) => "I0",
            Command::Info(1) => "I1",
            Command::Info(2) => "I2",
            Command::Info(3) => "I3",
            Command::Info(_) => "I4",
            Command::Other { id, .. } => id,
        }
    }

    /// Writes the command with its CR LF; returns the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferFull> {
        let mut w = ByteWriter::new(out);
        w.extend(self.id().as_bytes())?;
        match self {
            Command::TareValue(Some(weight)) => {
                w.push(b' ')?;
                weight.write_decimal(&mut w)?;
                w.push(b' ')?;
                w.extend(weight.unit.as_bytes())?;
            }
            Command::Other { args, .. } if !args.is_empty() => {
                w.push(b' ')?;
                w.extend(args.as_bytes())?;
            }
            _ => {}
        }
        w.extend(b"\r\n")?;
        Ok(w.len())
    }
}

/// The status field of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `S`: stable weight.
    Stable,
    /// `D`: dynamic (unstable) weight.
    Dynamic,
    /// `A`: command executed.
    Executed,
    /// `B`: more responses follow.
    More,
    /// `I`: understood but not executable now (busy, or timed out waiting for stability).
    NotExecutable,
    /// `L`: logical error or parameter not allowed.
    Logical,
    /// `+`: overload.
    Overload,
    /// `-`: underload.
    Underload,
}

impl Status {
    /// Reads a status character.
    pub fn from_byte(byte: u8) -> Option<Status> {
        Some(match byte {
            b'S' => Status::Stable,
            b'D' => Status::Dynamic,
            b'A' => Status::Executed,
            b'B' => Status::More,
            b'I' => Status::NotExecutable,
            b'L' => Status::Logical,
            b'+' => Status::Overload,
            b'-' => Status::Underload,
            _ => return None,
        })
    }

    /// The status character.
    pub fn as_byte(self) -> u8 {
        match self {
            Status::Stable => b'S',
            Status::Dynamic => b'D',
            Status::Executed => b'A',
            Status::More => b'B',
            Status::NotExecutable => b'I',
            Status::Logical => b'L',
            Status::Overload => b'+',
            Status::Underload => b'-',
        }
    }
}

/// General errors, sent without a command name or status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneralError {
    /// `ES`: syntax error (command unknown or not allowed).
    Syntax,
    /// `ET`: transmission error (parity error or interface break).
    Transmission,
    /// `EL`: logical error (cannot execute).
    Logical,
}

impl GeneralError {
    /// The two-letter code.
    pub fn code(self) -> &'static str {
        match self {
            GeneralError::Syntax => "ES",
            GeneralError::Transmission => "ET",
            GeneralError::Logical => "EL",
        }
    }
}

/// Whatever follows the status field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// Nothing.
    Empty,
    /// A weight value and unit.
    Weight(Weight),
    /// Other parameters, raw (use [`Tokens`] to split them; quoted strings stay whole).
    Params(&'a str),
}

/// A scale-to-host response line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// `ES`, `ET` or `EL`.
    Error(GeneralError),
    /// `<id> <status> [body]`.
    Reply {
        /// Response name (`S` for `S`, `SI` and `SIR`).
        id: &'a str,
        /// Status field.
        status: Status,
        /// What follows the status.
        body: Body<'a>,
    },
}

/// Why a response line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// The line was empty.
    Empty,
    /// The line contained a byte outside printable ASCII.
    NotPrintable(u8),
    /// Only a name, no status.
    MissingStatus,
    /// The status field is not one of `S D A B I L + -`.
    BadStatus,
    /// The weight value is not a decimal.
    BadWeight(DecimalError),
    /// The unit after a weight is not a unit.
    BadUnit,
    /// A quoted string is not closed.
    UnterminatedQuote,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty response line"),
            Self::NotPrintable(b) => write!(f, "byte 0x{b:02x} is not printable ASCII"),
            Self::MissingStatus => f.write_str("response has no status field"),
            Self::BadStatus => f.write_str("unknown status field"),
            Self::BadWeight(e) => write!(f, "bad weight value: {e}"),
            Self::BadUnit => f.write_str("bad unit after weight"),
            Self::UnterminatedQuote => f.write_str("unterminated quoted string"),
        }
    }
}

/// Why a response could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferFull,
    /// The weight needs more than [`WEIGHT_FIELD_WIDTH`] characters.
    WeightTooWide,
}

impl From<BufferFull> for EncodeError {
    fn from(_: BufferFull) -> Self {
        EncodeError::BufferFull
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferFull => f.write_str("output buffer too small"),
            Self::WeightTooWide => f.write_str("weight wider than the 10-character field"),
        }
    }
}

impl core::error::Error for CommandError {}
impl core::error::Error for ResponseError {}
impl core::error::Error for EncodeError {}

/// Splits MT-SICS parameters on runs of spaces, keeping `"quoted strings"` whole (without quotes).
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    /// Tokens of `text`.
    pub fn new(text: &'a str) -> Self {
        Self { rest: text }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<&'a str, ResponseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.trim_start_matches(' ');
        if rest.is_empty() {
            self.rest = rest;
            return None;
        }
        if let Some(quoted) = rest.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => {
                    self.rest = &quoted[end + 1..];
                    Some(Ok(&quoted[..end]))
                }
                None => {
                    self.rest = "";
                    Some(Err(ResponseError::UnterminatedQuote))
                }
            }
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            self.rest = &rest[end..];
            Some(Ok(&rest[..end]))
        }
    }
}

/// Parses one response line (without CR LF).
pub fn parse_response(line: &[u8]) -> Result<Response<'_>, ResponseError> {
    let text = printable(line)
        .map_err(ResponseError::NotPrintable)?
        .trim_matches(' ');
    match text {
        "" => return Err(ResponseError::Empty),
        "ES" => return Ok(Response::Error(GeneralError::Syntax)),
        "ET" => return Ok(Response::Error(GeneralError::Transmission)),
        "EL" => return Ok(Response::Error(GeneralError::Logical)),
        _ => {}
    }
    let Some(space) = text.find(' ') else {
        return Err(ResponseError::MissingStatus);
    };
    let id = &text[..space];
    let rest = text[space..].trim_start_matches(' ');
    let (status_text, params) = match rest.find(' ') {
        Some(i) => (&rest[..i], rest[i..].trim_start_matches(' ')),
        None => (rest, ""),
    };
    let status = match status_text.as_bytes() {
        [b] => Status::from_byte(*b).ok_or(ResponseError::BadStatus)?,
        _ => return Err(ResponseError::BadStatus),
    };
    if params.is_empty() {
        return Ok(Response::Reply {
            id,
            status,
            body: Body::Empty,
        });
    }
    // Check quotes are balanced and find out whether this is `<value> <unit>`.
    let mut tokens = Tokens::new(params);
    let first = tokens.next().transpose()?;
    let second = tokens.next().transpose()?;
    let third = tokens.next().transpose()?;
    for t in tokens {
        t?;
    }
    let body = match (first, second, third) {
        (Some(value), Some(unit), None) if looks_numeric(value) && !params.contains('"') => {
            let (v, d) =
                Weight::parse_decimal(value.as_bytes()).map_err(ResponseError::BadWeight)?;
            let unit = Unit::parse(unit.as_bytes()).ok_or(ResponseError::BadUnit)?;
            Body::Weight(Weight::new(v, d, unit))
        }
        _ => Body::Params(params),
    };
    Ok(Response::Reply { id, status, body })
}

fn looks_numeric(token: &str) -> bool {
    let t = token.trim_start_matches(['-', '+']);
    t.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
}

/// Writes `weight`'s value right-aligned in the 10-character field.
pub fn write_weight_field(weight: &Weight, out: &mut ByteWriter<'_>) -> Result<(), EncodeError> {
    let len = weight.decimal_len();
    if len > WEIGHT_FIELD_WIDTH {
        return Err(EncodeError::WeightTooWide);
    }
    out.fill(b' ', WEIGHT_FIELD_WIDTH - len)?;
    weight.write_decimal(out)?;
    Ok(())
}

impl<'a> Response<'a> {
    /// `<id> <status> <w10> <unit>`.
    pub fn weight(id: &'a str, status: Status, weight: Weight) -> Self {
        Response::Reply {
            id,
            status,
            body: Body::Weight(weight),
        }
    }

    /// `<id> <status>`.
    pub fn status(id: &'a str, status: Status) -> Self {
        Response::Reply {
            id,
            status,
            body: Body::Empty,
        }
    }

    /// Writes the response with its CR LF; returns the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = ByteWriter::new(out);
        match self {
            Response::Error(e) => w.extend(e.code().as_bytes())?,
            Response::Reply { id, status, body } => {
                w.extend(id.as_bytes())?;
                w.push(b' ')?;
                w.push(status.as_byte())?;
                match body {
                    Body::Empty => {}
                    Body::Weight(weight) => {
                        w.push(b' ')?;
                        write_weight_field(weight, &mut w)?;
                        w.push(b' ')?;
                        w.extend(weight.unit.as_bytes())?;
                    }
                    Body::Params(p) => {
                        w.push(b' ')?;
                        w.extend(p.as_bytes())?;
                    }
                }
            }
        }
        w.extend(b"\r\n")?;
        Ok(w.len())
    }
}
