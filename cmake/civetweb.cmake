# CivetWeb: Debian's civetweb-config.cmake also imports the `civetweb` server binary and
# fails when that package is not installed, so the library is found directly.
find_path(CIVETWEB_INCLUDE_DIR civetweb.h REQUIRED)
find_library(CIVETWEB_LIBRARY civetweb REQUIRED)
add_library(civetweb::civetweb UNKNOWN IMPORTED)
set_target_properties(civetweb::civetweb PROPERTIES
    IMPORTED_LOCATION ${CIVETWEB_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${CIVETWEB_INCLUDE_DIR}
    INTERFACE_COMPILE_DEFINITIONS CIVETWEB_DLL_IMPORTS
    INTERFACE_LINK_LIBRARIES dl)
