#pragma once
/// \file
/// The safeguarding domain (DOMAIN.md) as a typed C++ API over the record core:
/// children, assessments against a template, contact notes, missing episodes with
/// return-home interviews, information-sharing decisions, people / vehicles /
/// locations of concern, and referrals. Every operation is one vault transaction
/// (values, journal, audit). Lifecycle rules are rules of the entity types, so the
/// generic `RecordStore` API cannot bypass them either.
///
/// Errors: a rule or value problem throws `Error{Errc::validation}` whose message
/// names the field ("assessment.judgement_reason: ..."); an unknown id throws
/// `Error{Errc::not_found}`. Nothing is written in either case.
/// Thread safety: as `RecordStore` (one thread at a time).

#include <outpost/export.h>
#include <outpost/records.hpp>
#include <outpost/template.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::model {

/// Adds the built-in safeguarding entity types (names below), with their fields,
/// merge policies and lifecycle rules, to `schema`. Every `RecordStore` registers
/// them itself; the sync server reads their merge policies from here so that it
/// merges each field as the devices do. Throws Error{already_exists} when `schema`
/// already has one of the types.
OUTPOST_API void registerSafeguardingTypes(Schema& schema);

} // namespace outpost::model

namespace outpost::safeguarding {

using model::RecordStore;
using sync::Uuid;

inline constexpr std::string_view kChildType = "child";
inline constexpr std::string_view kAssessmentType = "assessment";
inline constexpr std::string_view kContactNoteType = "contact_note";
inline constexpr std::string_view kMissingEpisodeType = "missing_episode";
inline constexpr std::string_view kReturnHomeInterviewType = "return_home_interview";
inline constexpr std::string_view kSharingDecisionType = "sharing_decision";
inline constexpr std::string_view kPersonOfConcernType = "person_of_concern";
inline constexpr std::string_view kVehicleOfConcernType = "vehicle_of_concern";
inline constexpr std::string_view kLocationOfConcernType = "location_of_concern";
inline constexpr std::string_view kReferralType = "referral";

/// A return-home interview is due within 72 hours of the child's return.
inline constexpr std::int64_t kReturnInterviewWindowMs = 72LL * 60 * 60 * 1000;

/// Who owns a record and where it belongs. Every record carries it.
struct Scope {
  std::string ownerTeam;
  std::string localAuthority;
  std::string policeForceArea;
  std::string retentionClass = "standard";
};

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

struct Child {
  Uuid id; ///< set by `add`
  std::string name;
  std::vector<std::string> aliases;
  std::optional<std::string> dateOfBirth; ///< "YYYY-MM-DD"
  std::optional<std::int64_t> estimatedAgeYears;
  std::string gender;
  std::vector<std::string> needs;
  bool learningDisability = false;
  std::string school;
  std::string
      careStatus; ///< none | child_in_need | child_protection_plan | looked_after | care_leaver
  std::string placingAuthority;
  std::vector<std::string> agencies;
  std::string leadProfessional;
  Scope scope;        ///< local authority and police force area are required for a child
  std::string status; ///< active | closed (read only here)
};

class OUTPOST_API Children {
public:
  explicit Children(RecordStore& store) noexcept : store_(store) {}
  /// Records a child; returns the new id.
  Uuid add(const Child& child);
  /// Replaces the child's details with `child` (by `child.id`).
  void update(const Child& child);
  /// The child as shown to the worker (audited as a view), or nullopt.
  [[nodiscard]] std::optional<Child> view(const Uuid& id);
  /// Ids of the records linked to the child (assessments, notes, episodes, ...),
  /// optionally of one type, oldest first, paged.
  [[nodiscard]] model::IdPage records(const Uuid& child, std::optional<std::string> type = {},
                                      std::size_t limit = 50,
                                      std::optional<std::string> after = {});

private:
  RecordStore& store_;
};

// ---------------------------------------------------------------------------
// Assessments
// ---------------------------------------------------------------------------

struct AssessmentStart {
  Uuid child;
  std::string templateId;
  std::int64_t templateVersion = 0;
  std::string assessedBy;
  std::vector<std::string> participants;
  Scope scope;
};

/// The assessor's judgement, given at submission.
struct Judgement {
  /// The judged level; nullopt keeps the computed one. Raising is free; lowering
  /// needs `reason` and a supervisor's sign-off.
  std::optional<std::string> level;
  std::string reason;
  std::string supervisor;
  std::optional<std::int64_t> supervisorSignedAtMs;
  std::string childView;
  std::string carerView;
  std::string analysis;
  std::vector<std::string> actions;
};

struct Assessment {
  Uuid id;
  Uuid child;
  std::string templateId;
  std::int64_t templateVersion = 0;
  std::string status; ///< draft | submitted | reviewed | superseded
  model::Answers answers;
  std::optional<std::int64_t> score;
  std::string computedLevel;
  std::string judgedLevel;
  std::string explanation; ///< `describe()` of the score at submission
  std::string judgementReason;
  std::string reviewDue; ///< "YYYY-MM-DD"
  std::optional<Uuid> supersededBy;
};

class OUTPOST_API Assessments {
public:
  /// `catalog` and `clock` must outlive this object.
  Assessments(RecordStore& store, const model::TemplateCatalog& catalog,
              const platform::Clock& clock) noexcept
      : store_(store), catalog_(catalog), clock_(clock) {}

  /// Starts a draft pinned to the template version. Throws Error{validation} if
  /// the catalog does not have that template.
  Uuid start(const AssessmentStart& start);
  /// Saves answers to a draft (may be incomplete). Throws Error{validation} once
  /// submitted (answers are locked).
  void saveAnswers(const Uuid& id, const model::Answers& answers);
  /// Checks the answers against the template (every problem reported, by
  /// question), scores them, stores the computed level with its explanation and
  /// the review due date, records the judgement and locks the assessment.
  model::ScoreExplanation submit(const Uuid& id, const Judgement& judgement,
                                 const model::AssessmentContext& context);
  /// submitted -> reviewed.
  void review(const Uuid& id, std::string_view reviewer);
  /// Marks `id` superseded by `next` (another assessment of the same child).
  void supersede(const Uuid& id, const Uuid& next);
  [[nodiscard]] std::optional<Assessment> view(const Uuid& id);
  /// Assessments whose review is due before `beforeMs`, soonest first.
  [[nodiscard]] model::IdPage reviewsDue(std::int64_t beforeMs, std::size_t limit = 50,
                                         std::optional<std::string> after = {});
  /// Assessments whose level in force (the judged level) is `level`.
  [[nodiscard]] model::IdPage atLevel(std::string_view level, std::size_t limit = 50,
                                      std::optional<std::string> after = {});

private:
  RecordStore& store_;
  const model::TemplateCatalog& catalog_;
  const platform::Clock& clock_;
};

/// Answers as stored (JSON) and back.
[[nodiscard]] OUTPOST_API std::string answersToJson(const model::Answers& answers);
[[nodiscard]] OUTPOST_API model::Answers answersFromJson(std::string_view json);

// ---------------------------------------------------------------------------
// Contact notes
// ---------------------------------------------------------------------------

struct PersonPresent {
  std::string name;
  std::string role;
};
struct NoteAction {
  std::string action;
  std::string owner;
  std::string deadline; ///< "YYYY-MM-DD" or empty
};
struct Addendum {
  std::int64_t atMs = 0;
  std::string by;
  std::string text;
};

struct ContactNote {
  Uuid id;
  Uuid child;
  std::int64_t startedAtMs = 0;
  std::optional<std::int64_t> endedAtMs;
  std::string place;
  bool planned = true;
  std::vector<PersonPresent> present;
  bool seenAlone = false;
  std::string facts;      ///< what happened
  std::string analysis;   ///< kept apart from the facts
  std::string childWords; ///< the child's own words
  std::vector<NoteAction> actions;
  std::optional<std::int64_t> signedAtMs;
  std::string signedBy;
  std::vector<Addendum> addenda;
  Scope scope;
  std::string status; ///< draft | signed (read only here)
};

class OUTPOST_API ContactNotes {
public:
  ContactNotes(RecordStore& store, const platform::Clock& clock) noexcept
      : store_(store), clock_(clock) {}
  Uuid add(const ContactNote& note);
  /// Replaces a draft's content. Throws Error{validation} once signed.
  void edit(const ContactNote& note);
  /// Signs the note as the store's worker: from now on it is frozen.
  void sign(const Uuid& id);
  /// Appends a correction to a signed note (the note itself never changes).
  void addAddendum(const Uuid& id, std::string_view text);
  [[nodiscard]] std::optional<ContactNote> view(const Uuid& id);
  /// Full-text search over facts, analysis and the child's words (FTS5 syntax).
  [[nodiscard]] model::IdPage search(std::string_view text, std::size_t limit = 50,
                                     std::optional<std::string> after = {});

private:
  RecordStore& store_;
  const platform::Clock& clock_;
};

// ---------------------------------------------------------------------------
// Missing episodes and return-home interviews
// ---------------------------------------------------------------------------

struct MissingEpisode {
  Uuid id;
  Uuid child;
  std::int64_t reportedAtMs = 0;
  std::optional<std::int64_t> lastSeenAtMs;
  std::string lastSeenPlace;
  std::string policeReference;
  std::string policeRiskGrading; ///< no_apparent_risk | low | medium | high, or empty
  Scope scope;
};

struct InterviewOutcome {
  std::string interviewer;
  bool independent = true;
  std::string whereWent;
  std::string withWhom;
  std::string travel;
  std::string harm;
  std::vector<std::string> pushFactors;
  std::vector<std::string> pullFactors;
};

class OUTPOST_API MissingEpisodes {
public:
  MissingEpisodes(RecordStore& store, const platform::Clock& clock) noexcept
      : store_(store), clock_(clock) {}
  Uuid report(const MissingEpisode& episode);
  /// The child returned at `returnedAtMs`: closes the missing period and creates
  /// the return-home interview, due 72 hours later. Returns the interview's id.
  Uuid recordReturn(const Uuid& episode, std::int64_t returnedAtMs, std::string_view foundPlace);
  void offerInterview(const Uuid& interview, std::int64_t offeredAtMs,
                      std::string_view interviewer);
  void completeInterview(const Uuid& interview, std::int64_t heldAtMs,
                         const InterviewOutcome& outcome);
  void declineInterview(const Uuid& interview, std::string_view reason);
  void interviewNotPossible(const Uuid& interview, std::string_view reason);
  /// Interviews not yet held whose deadline has passed (now from the clock),
  /// most overdue first.
  [[nodiscard]] model::IdPage overdueInterviews(std::size_t limit = 50,
                                                std::optional<std::string> after = {});

private:
  RecordStore& store_;
  const platform::Clock& clock_;
};

// ---------------------------------------------------------------------------
// Information sharing, intelligence, referrals
// ---------------------------------------------------------------------------

struct SharingDecision {
  std::optional<Uuid> child;
  bool share = false; ///< both decisions are recorded
  std::string purpose;
  std::vector<std::string> recipients;
  std::string sharedItems;   ///< exactly what was shared
  std::string reason;        ///< why
  std::string lawfulBasis;   ///< e.g. safeguarding_dpa2018_sch1
  std::string consentStatus; ///< given | refused | not_sought | not_applicable
  std::string consentNotSoughtReason;
  std::string decidedBy;
  std::string managerConsulted;
  std::string method;
  std::vector<std::string> protectedIdentities;
  Scope scope;
};

class OUTPOST_API SharingDecisions {
public:
  SharingDecisions(RecordStore& store, const platform::Clock& clock) noexcept
      : store_(store), clock_(clock) {}
  /// Records the decision (immutable once made). A decision to share is audited
  /// as a share.
  Uuid record(const SharingDecision& decision);

private:
  RecordStore& store_;
  const platform::Clock& clock_;
};

enum class Provenance { firstHand, hearsay };

struct Concern {
  std::vector<Uuid> children;
  Provenance provenance = Provenance::firstHand;
  std::optional<std::int64_t> seenAtMs;
  std::string description;
  Scope scope;
};
struct PersonOfConcern : Concern {
  std::string name;
  std::vector<std::string> nicknames;
  std::vector<std::string> phoneNumbers;
};
struct VehicleOfConcern : Concern {
  std::string registration;
  bool registrationPartial = false;
  std::string make;
  std::string model;
  std::string colour;
  std::string marks;
};
struct LocationOfConcern : Concern {
  std::string address;
  std::string venueType; ///< hotel | takeaway | taxi_firm | party_house | park | shop |
                         ///< private_address | other
};

class OUTPOST_API Concerns {
public:
  explicit Concerns(RecordStore& store) noexcept : store_(store) {}
  Uuid addPerson(const PersonOfConcern& person);
  Uuid addVehicle(const VehicleOfConcern& vehicle);
  Uuid addLocation(const LocationOfConcern& location);
  /// Links a child to a person, vehicle or location of concern.
  void linkChild(const Uuid& concern, const Uuid& child);

private:
  RecordStore& store_;
};

struct Referral {
  Uuid child;
  std::string destination; ///< mash | strategy_discussion | mace | police | other_council
  std::string receivingAuthority;
  std::string reason;
  std::optional<Uuid> assessment;
  Scope scope;
};

class OUTPOST_API Referrals {
public:
  Referrals(RecordStore& store, const platform::Clock& clock) noexcept
      : store_(store), clock_(clock) {}
  /// Queues a referral (it is sent when the device syncs).
  Uuid queue(const Referral& referral);
  /// queued -> sent -> acknowledged -> outcome; only forward.
  void markSent(const Uuid& id);
  void markAcknowledged(const Uuid& id);
  void recordOutcome(const Uuid& id, std::string_view outcome);
  /// The referral's status.
  [[nodiscard]] std::string status(const Uuid& id);

private:
  RecordStore& store_;
  const platform::Clock& clock_;
};

} // namespace outpost::safeguarding
