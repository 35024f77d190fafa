# moeplan_proto_library(NAME PROTO): compiles one .proto into a static library whose
# generated header is included as "moeplan/schema/<name>.pb.h".
function(moeplan_proto_library name proto)
  get_filename_component(base ${proto} NAME_WE)
  get_filename_component(abs ${proto} ABSOLUTE)
  get_filename_component(dir ${abs} DIRECTORY)
  set(out ${CMAKE_BINARY_DIR}/gen/moeplan/schema)
  file(MAKE_DIRECTORY ${out})
  add_custom_command(
    OUTPUT ${out}/${base}.pb.cc ${out}/${base}.pb.h
    COMMAND protobuf::protoc --proto_path=${dir} --cpp_out=${out} ${abs}
    DEPENDS ${abs} protobuf::protoc
    COMMENT "protoc ${base}.proto")
  add_library(${name} STATIC ${out}/${base}.pb.cc)
  target_include_directories(${name} PUBLIC ${CMAKE_BINARY_DIR}/gen)
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf)
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
