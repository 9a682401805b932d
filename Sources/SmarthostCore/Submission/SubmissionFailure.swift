/// Why `sendmail` gave up, and its exit status (sysexits.h, as sendmail and Postfix use
/// them): callers such as cron and PHP look only at the status, an operator reads the line.
public struct SubmissionFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var exitCode: Int32
    public var reason: String

    public init(exitCode: Int32, reason: String) {
        self.exitCode = exitCode
        self.reason = reason
    }

    public var description: String { reason }

    /// EX_USAGE: the command line is wrong.
    public static func usage(_ reason: String) -> SubmissionFailure { SubmissionFailure(exitCode: 64, reason: reason) }
    /// EX_DATAERR: the relay refused the message or an address for good (5xx).
    public static func data(_ reason: String) -> SubmissionFailure { SubmissionFailure(exitCode: 65, reason: reason) }
    /// EX_SOFTWARE: a program error, e.g. a reply that is not SMTP.
    public static func software(_ reason: String) -> SubmissionFailure { SubmissionFailure(exitCode: 70, reason: reason) }
    /// EX_TEMPFAIL: the relay cannot be reached or said 4xx; nothing was accepted, try later.
    public static func tempfail(_ reason: String) -> SubmissionFailure { SubmissionFailure(exitCode: 75, reason: reason) }
}
