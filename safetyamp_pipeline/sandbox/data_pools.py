"""Static word pools for the synthetic data set (invented values; no real person data)."""

from __future__ import annotations

FIRST_NAMES_M = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles",
    "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul", "Andrew", "Joshua",
    "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Jason", "Edward", "Jeffrey", "Ryan",
    "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon",
    "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick", "Frank", "Raymond", "Jack", "Dennis", "Jerry",
    "Tyler", "Aaron", "Jose", "Adam", "Nathan", "Henry", "Zachary", "Douglas", "Peter", "Kyle",
    "Noah", "Ethan", "Jeremy", "Walter", "Christian", "Keith", "Roger", "Terry", "Austin", "Sean",
    "Gerald", "Carl", "Harold", "Dylan", "Arthur", "Lawrence", "Jordan", "Jesse", "Bryan", "Billy",
    "Bruce", "Gabriel", "Joe", "Logan", "Alan", "Juan", "Albert", "Willie", "Elijah", "Wayne",
    "Randy", "Vincent", "Mason", "Roy", "Ralph", "Bobby", "Russell", "Bradley", "Philip", "Eugene",
    "Luis", "Carlos", "Miguel", "Jesus", "Antonio", "Manuel", "Pedro", "Ricardo", "Hector", "Oscar",
    "Trey", "Beau", "Cody", "Dustin", "Travis", "Shane", "Clint", "Wade", "Dale", "Curtis",
)
FIRST_NAMES_F = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
    "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily", "Donna", "Michelle",
    "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Amy",
    "Kathleen", "Angela", "Shirley", "Brenda", "Emma", "Anna", "Pamela", "Nicole", "Samantha", "Katherine",
    "Christine", "Debra", "Rachel", "Carolyn", "Janet", "Maria", "Catherine", "Heather", "Diane", "Olivia",
)
MIDDLE_INITIALS = tuple("ABCDEFGHJKLMNPRSTW")
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes",
    "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper",
    "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson",
    "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
    "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
    "Broussard", "Thibodeaux", "Guidry", "Hebert", "Landry", "Boudreaux", "Fontenot", "Trahan", "LeBlanc",
    "Arceneaux", "Comeaux", "Doucet", "Melancon", "Richard", "Romero", "Savoie", "Theriot",
)
# Exactly one kind of each non-ASCII spelling Vista extracts carry (accents, tilde, diaeresis).
NON_ASCII_NAMES = (("José", "Muñoz"), ("Zoë", "Guérin"), ("André", "Peña"), ("Nguyễn", "Thị"))

# Titles are built from trades x grades so the default data set has ~130 distinct titles,
# in line with the 131-137 Vista titles seen in production.
TRADES = (
    "Pipefitter", "Welder", "Boilermaker", "Millwright", "Electrician", "Instrument Technician",
    "Insulator", "Scaffold Builder", "Carpenter", "Ironworker", "Rigger", "Equipment Operator",
    "Crane Operator", "Painter", "Sandblaster", "Laborer", "Truck Driver", "Mechanic",
)
GRADES = ("Helper", "Apprentice", "Journeyman", "Lead", "Foreman")
STAFF_TITLES = (
    "Foreman", "General Foreman", "Superintendent", "General Superintendent", "Project Engineer",
    "Project Manager", "Senior Project Manager", "Project Controls Specialist", "Field Engineer",
    "Safety Technician", "Safety Manager", "Site Safety Representative", "QA/QC Inspector",
    "QC Manager", "Welding Inspector", "Estimator", "Senior Estimator", "Buyer", "Purchasing Agent",
    "Warehouse Clerk", "Tool Room Attendant", "Timekeeper", "Payroll Clerk", "Accountant",
    "Accounts Payable Clerk", "HR Generalist", "Recruiter", "IT Technician", "Network Administrator",
    "Administrative Assistant", "Receptionist", "Office Manager", "Fleet Coordinator", "Dispatcher",
    "Planner", "Scheduler", "Document Controller", "Cost Engineer", "Area Manager", "Operations Manager",
    "Vice President", "Fabrication Shop Supervisor", "Fitter", "CAD Designer", "Surveyor",
)

DEPARTMENT_NAMES = (
    "Pipe Fabrication", "Field Piping", "Mechanical", "Electrical", "Instrumentation", "Civil",
    "Structural Steel", "Insulation", "Scaffolding", "Painting & Coatings", "Heavy Equipment",
    "Crane & Rigging", "Maintenance", "Turnarounds", "Shop Services", "Fleet", "Safety",
    "Quality Control", "Engineering", "Project Controls", "Estimating", "Purchasing", "Warehouse",
    "Accounting", "Human Resources", "Information Technology", "Administration", "Hydro Blasting",
    "Specialty Welding", "Refractory", "Boiler Services", "Tank Services", "Millwright Services",
    "Valve Services", "Heat Treating", "NDE Services", "Environmental", "Training", "Marine",
    "Industrial Services", "Small Projects", "Capital Projects", "Fabrication Yard", "Modular",
    "Commissioning", "Field Services", "Power Services", "Chemical Services", "Refinery Services",
    "Pipeline", "Utilities", "Demolition", "Concrete", "Dirt Work",
)
REGIONS = ("Central", "Gulf Coast", "Acadiana", "North")

# (city, state, zip prefix, phone area codes)
CITIES = (
    ("Baton Rouge", "LA", "708", ("225",)),
    ("Gonzales", "LA", "707", ("225",)),
    ("Lake Charles", "LA", "706", ("337",)),
    ("Lafayette", "LA", "705", ("337",)),
    ("Sulphur", "LA", "706", ("337",)),
    ("New Orleans", "LA", "701", ("504",)),
    ("Houma", "LA", "703", ("985",)),
    ("Shreveport", "LA", "711", ("318",)),
    ("Houston", "TX", "770", ("713", "281", "832")),
    ("Pasadena", "TX", "775", ("281",)),
    ("Beaumont", "TX", "777", ("409",)),
    ("Port Arthur", "TX", "776", ("409",)),
    ("Mobile", "AL", "366", ("251",)),
    ("Pascagoula", "MS", "395", ("228",)),
)
STREET_NAMES = (
    "Main St", "Oak Ave", "Airline Hwy", "Florida Blvd", "Perkins Rd", "Highland Rd", "Industrial Blvd",
    "River Rd", "Plank Rd", "Jefferson Hwy", "Greenwell Springs Rd", "Bayou Dr", "Cypress St",
    "Magnolia Ln", "Pecan Dr", "Live Oak Blvd", "Evangeline St", "Ryan St", "Prien Lake Rd", "Gulf Fwy",
)

JOB_CLIENTS = (
    "ExxonMobil", "Shell", "Dow", "BASF", "Marathon", "Motiva", "Valero", "Phillips 66", "Chevron",
    "Citgo", "Westlake", "Sasol", "Formosa", "Honeywell", "Olin", "Entergy", "Cheniere", "Venture Global",
    "LyondellBasell", "Air Products", "Nutrien", "CF Industries", "Huntsman", "ExxonMobil Chemical",
)
JOB_SCOPES = (
    "Turnaround Support", "Piping Replacement", "Tank Repairs", "Unit Expansion", "Maintenance T&M",
    "Boiler Retube", "Heat Exchanger Work", "Tie-ins", "Pipe Rack Extension", "Electrical Upgrade",
    "Instrument Calibration", "Insulation Removal", "Scaffold Services", "Valve Program", "Compressor Overhaul",
    "Cooling Tower Repairs", "Flare Line Replacement", "Fabrication Package", "Module Assembly", "Hydro Testing",
)

VEHICLES = (
    ("Ford", "F-150"), ("Ford", "F-250 Super Duty"), ("Ford", "F-350 Super Duty"), ("Ford", "Transit"),
    ("Chevrolet", "Silverado 1500"), ("Chevrolet", "Silverado 2500HD"), ("RAM", "1500"), ("RAM", "2500"),
    ("RAM", "3500"), ("GMC", "Sierra 2500HD"), ("Toyota", "Tundra"), ("Toyota", "Tacoma"),
    ("Freightliner", "M2 106"), ("Kenworth", "T880"),
)
GATEWAY_MODELS = ("VG54NA", "VG55NA", "VG34")
DRIVER_SHIFTS = ("day shift", "night shift", "yard", "rotator", "fuel truck", "crew truck")
