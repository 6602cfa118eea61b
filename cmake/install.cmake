# `make install` and the CMake package: the binary and its man page (component runtime, what the
# Debian package ships), and the headers, static libraries and unbrokenConfig.cmake (component dev),
# so another project can `find_package(unbroken CONFIG REQUIRED)` and link `unbroken::unbroken`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# project(VERSION) names the release; until it is set the package calls itself 0.0.0.
set(UNBROKEN_PACKAGE_VERSION "${PROJECT_VERSION}")
if(NOT UNBROKEN_PACKAGE_VERSION)
  set(UNBROKEN_PACKAGE_VERSION 0.0.0)
endif()

# Everything in one target, in link order: the static libraries' own dependencies say which comes first.
add_library(unbroken_library INTERFACE)
set_target_properties(unbroken_library PROPERTIES EXPORT_NAME unbroken)
target_link_libraries(unbroken_library INTERFACE ub_app ub_chaos ub_analyze)
add_library(unbroken::unbroken ALIAS unbroken_library)

install(TARGETS unbroken RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)

set(UNBROKEN_INSTALLED_LIBRARIES
    llhttp ub_base ub_net ub_http ub_observe ub_session ub_proxy ub_app ub_chaos ub_analyze unbroken_library)
install(TARGETS ${UNBROKEN_INSTALLED_LIBRARIES} EXPORT unbrokenTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
# The code includes "http/server.h": the tree under src/ keeps its shape under include/unbroken.
install(DIRECTORY src/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/unbroken COMPONENT dev
        FILES_MATCHING PATTERN "*.h")

set(UNBROKEN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/unbroken)
install(EXPORT unbrokenTargets NAMESPACE unbroken:: DESTINATION ${UNBROKEN_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(cmake/unbrokenConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/unbrokenConfig.cmake
                              INSTALL_DESTINATION ${UNBROKEN_CMAKE_DIR})
# Before 1.0 a minor release may change the API, so only the same major.minor is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/unbrokenConfigVersion.cmake
                                 VERSION ${UNBROKEN_PACKAGE_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/unbrokenConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/unbrokenConfigVersion.cmake
        DESTINATION ${UNBROKEN_CMAKE_DIR} COMPONENT dev)

# unbroken(1), written by the binary from the tables --help prints (src/cli/man_page.cc).
set(UNBROKEN_MAN_PAGE ${CMAKE_CURRENT_BINARY_DIR}/unbroken.1)
add_custom_command(OUTPUT ${UNBROKEN_MAN_PAGE}
                   COMMAND sh -c "\"$1\" help-man > \"$2.tmp\" && mv \"$2.tmp\" \"$2\"" sh $<TARGET_FILE:unbroken>
                           ${UNBROKEN_MAN_PAGE}
                   DEPENDS unbroken VERBATIM COMMENT "Writing unbroken.1")
add_custom_target(unbroken_man_page ALL DEPENDS ${UNBROKEN_MAN_PAGE})
install(FILES ${UNBROKEN_MAN_PAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)

# `make deb`: the runtime component and packaging/ as a Debian package (packaging/deb/build-deb).
add_custom_target(deb COMMAND ${PROJECT_SOURCE_DIR}/packaging/deb/build-deb ${CMAKE_CURRENT_BINARY_DIR}
                              ${UNBROKEN_PACKAGE_VERSION}
                  DEPENDS unbroken unbroken_man_page USES_TERMINAL VERBATIM)
