#include "moeplan/Description/Load.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

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

// Collects the text-format parser's complaints as findings.
class FindingCollector : public pb::io::ErrorCollector {
public:
  FindingCollector(std::vector<Finding> &out, const std::string &file, int firstLine,
                   const std::string &text)
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
  // The parser reports an unknown field after reading its name; point at the name instead.
  int columnOfNamedField(int line, int column, const std::string &message) const {
    const std::string marker = "no field named \"";
    size_t at = message.find(marker);
    if (at == std::string::npos || line < 0 || column < 0) return column;
    std::string name = message.substr(at + marker.size());
    name = name.substr(0, name.find('"'));
    size_t begin = 0;
    for (int l = 0; l < line && begin != std::string::npos; ++l) {
      begin = text_.find('\n', begin);
      if (begin != std::string::npos) ++begin;
    }
    if (begin == std::string::npos || name.empty()) return column;
    std::string lineText = text_.substr(begin, text_.find('\n', begin) - begin);
    size_t found = lineText.rfind(name, size_t(column));
    return found == std::string::npos ? column : int(found);
  }

  std::vector<Finding> &out_;
  const std::string &file_;
  int firstLine_;
  const std::string &text_;
};

void indexMessage(const pb::Message &msg, const pb::TextFormat::ParseInfoTree *tree,
                  const std::string &prefix, LocationIndex &index, int firstLine) {
  if (!tree) return;
  const pb::Reflection *refl = msg.GetReflection();
  std::vector<const pb::FieldDescriptor *> fields;
  refl->ListFields(msg, &fields);
  auto locate = [&](const pb::FieldDescriptor *f, int i) -> std::optional<SourceLocation> {
    pb::TextFormat::ParseLocation l = tree->GetLocation(f, i);
    if (l.line < 0) return std::nullopt;
    return SourceLocation{index.file(), l.line + firstLine, l.column + 1};
  };
  for (const pb::FieldDescriptor *f : fields) {
    std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    bool isMessage = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;
    if (f->is_repeated()) {
      int n = refl->FieldSize(msg, f);
      for (int i = 0; i < n; ++i) {
        std::string elem = path + "[" + std::to_string(i) + "]";
        if (auto loc = locate(f, i)) {
          if (i == 0) index.add(path, *loc);
          index.add(elem, *loc);
        }
        if (isMessage)
          indexMessage(refl->GetRepeatedMessage(msg, f, i), tree->GetTreeForNested(f, i), elem,
                       index, firstLine);
      }
    } else {
      if (auto loc = locate(f, -1)) index.add(path, *loc);
      if (isMessage)
        indexMessage(refl->GetMessage(msg, f), tree->GetTreeForNested(f, -1), path, index,
                     firstLine);
    }
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
  FindingCollector collector(out.parseErrors, file, firstLine, text);
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
  indexMessage(out.deployment, &tree, "", out.locations, firstLine);
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
