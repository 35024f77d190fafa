#include "moeplan/Description/Load.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace moeplan {

namespace pb = google::protobuf;

SourceLocation LocationIndex::lookup(const std::string &path) const {
  std::string p = path;
  while (!p.empty()) {
    auto it = locations_.find(p);
    if (it != locations_.end()) return it->second;
    // Climb to the parent: drop a trailing "[i]" or ".name".
    size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p.resize(cut);
  }
  return SourceLocation{file_, firstLine_, 1};
}

namespace {

// Positions (0-based line, column) of a text, for scanning from a parser location.
class TextPositions {
public:
  explicit TextPositions(const std::string &text) : text_(text) {
    lineStarts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n') lineStarts_.push_back(i + 1);
  }

  static bool isWordChar(char c) { return std::isalnum(uchar(c)) || c == '_'; }

  // Line `line` (from 0) without its newline; empty past the end.
  std::string lineText(int line) const {
    if (line < 0 || size_t(line) >= lineStarts_.size()) return "";
    size_t begin = lineStarts_[line];
    size_t end = text_.find('\n', begin);
    return text_.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  }

  // Where each value written by the occurrence of a repeated scalar field whose name starts
  // at (line, column) begins: one position for `gpus: 3`, one per element for `gpus: [3, 4]`.
  std::vector<std::pair<int, int>> valuesOfOccurrence(int line, int column) const {
    std::vector<std::pair<int, int>> out;
    if (line < 0 || size_t(line) >= lineStarts_.size()) return out;
    size_t i = lineStarts_[line] + size_t(column);
    while (i < text_.size() && isWordChar(text_[i])) ++i;
    skipSpace(i);
    if (i >= text_.size() || text_[i] != ':') return out;
    ++i;
    skipSpace(i);
    if (i < text_.size() && text_[i] != '[') {
      out.push_back(position(i));
      return out;
    }
    ++i;  // past '['
    for (;;) {
      skipSpace(i);
      if (i >= text_.size() || text_[i] == ']') return out;
      out.push_back(position(i));
      while (i < text_.size() && text_[i] != ',' && text_[i] != ']' && !std::isspace(uchar(text_[i])))
        ++i;
      skipSpace(i);
      if (i < text_.size() && text_[i] == ',') ++i;
    }
  }

private:
  static unsigned char uchar(char c) { return static_cast<unsigned char>(c); }
  void skipSpace(size_t &i) const {
    while (i < text_.size()) {
      if (std::isspace(uchar(text_[i]))) ++i;
      else if (text_[i] == '#') while (i < text_.size() && text_[i] != '\n') ++i;
      else break;
    }
  }
  std::pair<int, int> position(size_t offset) const {
    size_t line = std::upper_bound(lineStarts_.begin(), lineStarts_.end(), offset) -
                  lineStarts_.begin() - 1;
    return {int(line), int(offset - lineStarts_[line])};
  }

  const std::string &text_;
  std::vector<size_t> lineStarts_;
};

// Collects the text-format parser's complaints as findings.
class FindingCollector : public pb::io::ErrorCollector {
public:
  FindingCollector(std::vector<Finding> &out, const std::string &file, int firstLine,
                   const TextPositions &text)
      : out_(out), file_(file), firstLine_(firstLine), text_(text) {}

  void AddError(int line, pb::io::ColumnNumber column, const std::string &message) override {
    column = columnOfNamedField(line, column, message);
    Finding f;
    f.rule = "syntax";
    f.severity = Severity::Error;
    f.message = message;
    // The tokenizer counts from 0; a negative line means "no position".
    f.location = SourceLocation{file_, line >= 0 ? line + firstLine_ : firstLine_,
                                column >= 0 ? column + 1 : 1};
    out_.push_back(std::move(f));
  }
  void AddWarning(int line, pb::io::ColumnNumber column, const std::string &message) override {
    AddError(line, column, message);
    out_.back().severity = Severity::Warning;
  }

private:
  // The parser reports some errors at the token after the culprit (an unknown or repeated
  // field name, an unknown enum value, a second oneof member). Point at the culprit instead:
  // the first name quoted in the message found on the reported line, before the reported
  // column, or on the line above (an enum value ends a line, the error lands on the next).
  int columnOfNamedField(int &line, int column, const std::string &message) const {
    static const char *const reportedAfter[] = {"no field named", "specified multiple times",
                                                "another member of oneof",
                                                "Unknown enumeration value"};
    bool after = false;
    for (const char *m : reportedAfter) after |= message.find(m) != std::string::npos;
    if (!after || line < 0 || column < 0) return column;
    for (size_t q = message.find('"'); q != std::string::npos;) {
      size_t end = message.find('"', q + 1);
      if (end == std::string::npos) break;
      std::string name = message.substr(q + 1, end - q - 1);
      q = message.find('"', end + 1);
      if (name.empty()) continue;
      for (int l = line, limit = column; l >= 0 && l >= line - 1; --l, limit = -1) {
        std::string text = text_.lineText(l);
        size_t found = findWord(text, name, limit < 0 ? text.size() : size_t(limit));
        if (found != std::string::npos) {
          line = l;
          return int(found);
        }
      }
    }
    return column;
  }

  // The last whole-word occurrence of `word` starting before `before`.
  static size_t findWord(const std::string &text, const std::string &word, size_t before) {
    size_t pos = text.size();
    while (pos > 0) {
      pos = text.rfind(word, pos - 1);
      if (pos == std::string::npos) return pos;
      bool startOk = pos == 0 || !TextPositions::isWordChar(text[pos - 1]);
      size_t after = pos + word.size();
      bool endOk = after >= text.size() || !TextPositions::isWordChar(text[after]);
      if (startOk && endOk && pos < before) return pos;
      if (pos == 0) break;
    }
    return std::string::npos;
  }

  std::vector<Finding> &out_;
  const std::string &file_;
  int firstLine_;
  const TextPositions &text_;
};

void indexMessage(const pb::Message &msg, const pb::TextFormat::ParseInfoTree *tree,
                  const std::string &prefix, LocationIndex &index, int firstLine,
                  const TextPositions &text) {
  if (!tree) return;
  const pb::Reflection *refl = msg.GetReflection();
  std::vector<const pb::FieldDescriptor *> fields;
  refl->ListFields(msg, &fields);
  auto at = [&](int line, int column) {
    return SourceLocation{index.file(), line + firstLine, column + 1};
  };
  for (const pb::FieldDescriptor *f : fields) {
    std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    bool isMessage = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;
    if (!f->is_repeated()) {
      pb::TextFormat::ParseLocation l = tree->GetLocation(f, -1);
      if (l.line >= 0) index.add(path, at(l.line, l.column));
      if (isMessage)
        indexMessage(refl->GetMessage(msg, f), tree->GetTreeForNested(f, -1), path, index,
                     firstLine, text);
      continue;
    }
    int n = refl->FieldSize(msg, f);
    pb::TextFormat::ParseLocation first = tree->GetLocation(f, 0);
    if (first.line >= 0) index.add(path, at(first.line, first.column));
    if (isMessage) {
      // One location (and one nested tree) per message written.
      for (int i = 0; i < n; ++i) {
        std::string elem = path + "[" + std::to_string(i) + "]";
        pb::TextFormat::ParseLocation l = tree->GetLocation(f, i);
        if (l.line >= 0) index.add(elem, at(l.line, l.column));
        indexMessage(refl->GetRepeatedMessage(msg, f, i), tree->GetTreeForNested(f, i), elem,
                     index, firstLine, text);
      }
      continue;
    }
    // Scalars: the parser records one location per occurrence of the field name, and one
    // occurrence may write a whole list; find each element's own position in the text.
    std::vector<std::pair<int, int>> values;
    for (int k = 0;; ++k) {
      pb::TextFormat::ParseLocation l = tree->GetLocation(f, k);
      if (l.line < 0) break;
      for (auto v : text.valuesOfOccurrence(l.line, l.column)) values.push_back(v);
    }
    if (int(values.size()) != n) continue;  // unexpected layout: elements fall back to `path`
    for (int i = 0; i < n; ++i)
      index.add(path + "[" + std::to_string(i) + "]", at(values[i].first, values[i].second));
  }
}

} // namespace

LoadedDescription parseDescription(const std::string &text, const std::string &file,
                                   int firstLine) {
  LoadedDescription out;
  out.firstLine = firstLine;
  out.locations.setFile(file, firstLine);
  if (text.size() > kMaxDescriptionBytes) {
    Finding f;
    f.rule = "syntax";
    f.message = "description is " + std::to_string(text.size()) + " bytes; the limit is " +
                std::to_string(kMaxDescriptionBytes);
    f.location = SourceLocation{file, firstLine, 1};
    out.parseErrors.push_back(std::move(f));
    return out;
  }
  TextPositions positions(text);
  FindingCollector collector(out.parseErrors, file, firstLine, positions);
  pb::TextFormat::ParseInfoTree tree;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(&tree);
  parser.AllowUnknownField(false);
  parser.AllowUnknownExtension(false);
  parser.SetRecursionLimit(16);  // the schema nests 3 deep; deeper input is not a description
  if (!parser.ParseFromString(text, &out.deployment)) {
    if (out.parseErrors.empty()) {
      Finding f;
      f.rule = "syntax";
      f.message = "cannot parse the description";
      f.location = SourceLocation{file, firstLine, 1};
      out.parseErrors.push_back(std::move(f));
    }
    return out;
  }
  indexMessage(out.deployment, &tree, "", out.locations, firstLine, positions);
  return out;
}

std::vector<InputChunk> splitInputFile(const std::string &text) {
  std::vector<InputChunk> chunks;
  std::istringstream in(text);
  std::string line, current;
  int lineNo = 0, start = 1;
  while (std::getline(in, line)) {
    ++lineNo;
    std::string trimmed = line;
    while (!trimmed.empty() && (trimmed.back() == '\r' || trimmed.back() == ' '))
      trimmed.pop_back();
    if (trimmed == "# -----") {
      chunks.push_back({current, start});
      current.clear();
      start = lineNo + 1;
      continue;
    }
    current += line;
    current += '\n';
  }
  chunks.push_back({current, start});
  return chunks;
}

std::optional<std::string> readFile(const std::string &path, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open file";
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    error = path + ": read error";
    return std::nullopt;
  }
  return ss.str();
}

void locateFindings(std::vector<Finding> &findings, const LocationIndex &index) {
  for (Finding &f : findings)
    if (!f.location.known()) f.location = index.lookup(f.fieldPath);
}

} // namespace moeplan
