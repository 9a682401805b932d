#if canImport(Glibc)
import Glibc
#endif

/// `sendmail`'s promise, as Postfix's and nullmailer's make it: once it exits 0 the
/// message is the relay's, whether or not the relay runs. It submits over SMTP first (the
/// relay's own checks, a `5xx` is the caller's to hear); when the relay cannot take the
/// message now — not listening, not answering within `SMTPSubmission.Timeouts`, or `4xx`
/// at any step — the recipients it has not taken go into the maildrop, which the relay
/// takes in when it runs. Only when even that fails is the exit status 75.
public enum SendmailDelivery {
    public enum Outcome: Equatable, Sendable {
        /// The relay took it: its queue ids.
        case submitted([String])
        /// In the maildrop as `name`; `reason` is why the relay did not take it.
        case queuedLocally(name: String, reason: String)
    }

    public static func deliver(_ submission: SendmailSubmission, targets: [SubmissionTarget], maildrop: String,
                               uid: UInt32, heloName: String, nowSeconds: Int64,
                               timeouts: SMTPSubmission.Timeouts = .init()) throws(SubmissionFailure) -> Outcome {
        var progress = SMTPSubmission.Progress()
        do throws(SubmissionFailure) {
            return .submitted(try SMTPSubmission.submit(submission.content, envelope: submission.envelope, targets: targets,
                                                        heloName: heloName, timeouts: timeouts, progress: &progress))
        } catch where error.exitCode == SubmissionFailure.tempfail("").exitCode {
            let rest = Array(submission.envelope.recipients.dropFirst(progress.recipientsDone))
            let message = MaildropMessage(uid: uid, sender: submission.envelope.sender, recipients: rest,
                                          heloName: heloName, droppedAt: nowSeconds, content: submission.content)
            do throws(SpoolError) {
                return .queuedLocally(name: try Maildrop.drop(message, directory: maildrop), reason: error.reason)
            } catch let dropError {
                throw .tempfail("\(error.reason); and cannot queue it locally: \(dropError)")
            }
        }
    }
}
