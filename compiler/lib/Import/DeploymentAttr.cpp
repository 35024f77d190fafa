// Protobuf message <-> MLIR dictionary by reflection: the deployment rides in the module so
// that every pass (and moeplan-opt on a .mlir file) reads the description itself.
#include "moeplan/Compiler/Import.h"

#include "mlir/IR/Builders.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

using namespace mlir;
namespace pb = google::protobuf;

namespace moeplan {

namespace {

Attribute scalarToAttr(Builder &b, const pb::Message &m, const pb::FieldDescriptor *f, int index) {
  const pb::Reflection *r = m.GetReflection();
  bool rep = f->is_repeated();
  switch (f->cpp_type()) {
  case pb::FieldDescriptor::CPPTYPE_INT32:
    return b.getI64IntegerAttr(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
  case pb::FieldDescriptor::CPPTYPE_INT64:
    return b.getI64IntegerAttr(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
  case pb::FieldDescriptor::CPPTYPE_UINT32:
    return b.getI64IntegerAttr(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
  case pb::FieldDescriptor::CPPTYPE_UINT64:
    return b.getI64IntegerAttr(
        int64_t(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f)));
  case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    return b.getF64FloatAttr(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
  case pb::FieldDescriptor::CPPTYPE_FLOAT:
    return b.getF64FloatAttr(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
  case pb::FieldDescriptor::CPPTYPE_BOOL:
    return b.getBoolAttr(rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f));
  case pb::FieldDescriptor::CPPTYPE_STRING:
    return b.getStringAttr(rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f));
  case pb::FieldDescriptor::CPPTYPE_ENUM: {
    int v = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
    const pb::EnumValueDescriptor *e = f->enum_type()->FindValueByNumber(v);
    return e ? Attribute(b.getStringAttr(e->name())) : Attribute(b.getI64IntegerAttr(v));
  }
  case pb::FieldDescriptor::CPPTYPE_MESSAGE:
    return messageToAttr(b.getContext(),
                         rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
  }
  return {};
}

bool setScalar(const Attribute &a, pb::Message &m, const pb::FieldDescriptor *f,
               const std::string &path, std::string &error) {
  const pb::Reflection *r = m.GetReflection();
  bool rep = f->is_repeated();
  auto wrong = [&](const char *what) {
    error = path + ": expected " + what;
    return false;
  };
  switch (f->cpp_type()) {
  case pb::FieldDescriptor::CPPTYPE_INT32:
  case pb::FieldDescriptor::CPPTYPE_INT64:
  case pb::FieldDescriptor::CPPTYPE_UINT32:
  case pb::FieldDescriptor::CPPTYPE_UINT64: {
    auto i = dyn_cast<IntegerAttr>(a);
    if (!i) return wrong("an integer");
    int64_t v = i.getInt();
    bool isUnsigned = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32 ||
                      f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64;
    bool is32 = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32 ||
                f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32;
    if ((isUnsigned && v < 0) || (is32 && (v > int64_t(UINT32_MAX) || v < INT32_MIN)))
      return wrong("an integer in the field's range");
    switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      rep ? r->AddInt32(&m, f, int32_t(v)) : r->SetInt32(&m, f, int32_t(v));
      break;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      rep ? r->AddInt64(&m, f, v) : r->SetInt64(&m, f, v);
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      rep ? r->AddUInt32(&m, f, uint32_t(v)) : r->SetUInt32(&m, f, uint32_t(v));
      break;
    default:
      rep ? r->AddUInt64(&m, f, uint64_t(v)) : r->SetUInt64(&m, f, uint64_t(v));
    }
    return true;
  }
  case pb::FieldDescriptor::CPPTYPE_DOUBLE:
  case pb::FieldDescriptor::CPPTYPE_FLOAT: {
    double v;
    if (auto fl = dyn_cast<FloatAttr>(a)) v = fl.getValueAsDouble();
    else if (auto i = dyn_cast<IntegerAttr>(a)) v = double(i.getInt());
    else return wrong("a number");
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE)
      rep ? r->AddDouble(&m, f, v) : r->SetDouble(&m, f, v);
    else
      rep ? r->AddFloat(&m, f, float(v)) : r->SetFloat(&m, f, float(v));
    return true;
  }
  case pb::FieldDescriptor::CPPTYPE_BOOL: {
    auto b = dyn_cast<BoolAttr>(a);
    if (!b) return wrong("true or false");
    rep ? r->AddBool(&m, f, b.getValue()) : r->SetBool(&m, f, b.getValue());
    return true;
  }
  case pb::FieldDescriptor::CPPTYPE_STRING: {
    auto s = dyn_cast<StringAttr>(a);
    if (!s) return wrong("a string");
    rep ? r->AddString(&m, f, s.str()) : r->SetString(&m, f, s.str());
    return true;
  }
  case pb::FieldDescriptor::CPPTYPE_ENUM: {
    const pb::EnumValueDescriptor *e = nullptr;
    if (auto s = dyn_cast<StringAttr>(a)) e = f->enum_type()->FindValueByName(s.str());
    if (!e) {
      std::string names;
      for (int i = 0; i < f->enum_type()->value_count(); ++i)
        names += (i ? ", " : "") + f->enum_type()->value(i)->name();
      error = path + ": expected one of " + names;
      return false;
    }
    rep ? r->AddEnumValue(&m, f, e->number()) : r->SetEnumValue(&m, f, e->number());
    return true;
  }
  case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
    auto d = dyn_cast<DictionaryAttr>(a);
    if (!d) return wrong("a dictionary");
    pb::Message *sub = rep ? r->AddMessage(&m, f) : r->MutableMessage(&m, f);
    return attrToMessageAt(d, *sub, path, error);
  }
  }
  return wrong("a supported value");
}

} // namespace

DictionaryAttr messageToAttr(MLIRContext *ctx, const pb::Message &m) {
  Builder b(ctx);
  std::vector<const pb::FieldDescriptor *> fields;
  m.GetReflection()->ListFields(m, &fields);
  SmallVector<NamedAttribute> entries;
  for (const pb::FieldDescriptor *f : fields) {
    Attribute value;
    if (f->is_repeated()) {
      SmallVector<Attribute> items;
      for (int i = 0, n = m.GetReflection()->FieldSize(m, f); i < n; ++i)
        items.push_back(scalarToAttr(b, m, f, i));
      value = b.getArrayAttr(items);
    } else {
      value = scalarToAttr(b, m, f, 0);
    }
    entries.push_back(b.getNamedAttr(f->name(), value));
  }
  return b.getDictionaryAttr(entries);
}

bool attrToMessageAt(DictionaryAttr attr, pb::Message &m, const std::string &prefix,
                     std::string &error) {
  const pb::Descriptor *d = m.GetDescriptor();
  for (NamedAttribute entry : attr) {
    std::string name = entry.getName().str();
    std::string path = prefix.empty() ? name : prefix + "." + name;
    const pb::FieldDescriptor *f = d->FindFieldByName(name);
    if (!f) {
      error = path + ": no such field in " + d->full_name();
      return false;
    }
    if (f->is_repeated()) {
      auto arr = dyn_cast<ArrayAttr>(entry.getValue());
      if (!arr) {
        error = path + ": expected an array";
        return false;
      }
      for (auto [i, item] : llvm::enumerate(arr))
        if (!setScalar(item, m, f, path + "[" + std::to_string(i) + "]", error)) return false;
    } else if (!setScalar(entry.getValue(), m, f, path, error)) {
      return false;
    }
  }
  return true;
}

bool attrToMessage(DictionaryAttr attr, pb::Message &m, std::string &error) {
  return attrToMessageAt(attr, m, "", error);
}

} // namespace moeplan
