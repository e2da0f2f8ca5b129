# cmake --install [--prefix P]: libhmmn (shared and static), hmmn/hmmn.h, the CMake package
# (find_package(hmmn) -> hmmn::hmmn, hmmn::hmmn_static) and hmmn.pc for pkg-config. Both are
# relocatable: they find the prefix from their own place, so --prefix at install time works.
include(CMakePackageConfigHelpers)
set(HMMN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/hmmn)

install(TARGETS hmmn EXPORT hmmnTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS hmmn_static EXPORT hmmnStaticTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/hmmn/hmmn.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hmmn)
install(EXPORT hmmnTargets NAMESPACE hmmn:: DESTINATION ${HMMN_CMAKE_DIR})
install(EXPORT hmmnStaticTargets NAMESPACE hmmn:: DESTINATION ${HMMN_CMAKE_DIR})

configure_package_config_file(cmake/hmmnConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/hmmnConfig.cmake
                              INSTALL_DESTINATION ${HMMN_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/hmmnConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hmmnConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/hmmnConfigVersion.cmake
        DESTINATION ${HMMN_CMAKE_DIR})

# hmmn.pc: prefix relative to the .pc file (${pcfiledir}), e.g. "../.." for lib/pkgconfig
set(HMMN_PC_DL "")
if(CMAKE_DL_LIBS)
  set(HMMN_PC_DL "-l${CMAKE_DL_LIBS}")
endif()
file(RELATIVE_PATH HMMN_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(cmake/hmmn.pc.in ${CMAKE_CURRENT_BINARY_DIR}/hmmn.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hmmn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
